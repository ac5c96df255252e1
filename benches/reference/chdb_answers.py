"""The eight questions (spec section 4) in chDB (embedded ClickHouse), over a
pinstream/Confluent S3-sink archive directory: one table per topic keyed by
`ind` (the emulator's re-sends of an `ind` are the same row, so any copy is
the table's row), the spec's cleaning (section 2), an inner join into a
Memory table, exact medians (quantileExactLow), max_threads = 2.

    python3 benches/reference/chdb_answers.py ARCHIVE_DIR OUT.json
"""
import json
import sys
import tempfile

from chdb import session

SETTINGS = "SETTINGS max_threads = 2, input_format_skip_unknown_fields = 1"
QUERY_SETTINGS = "SETTINGS max_threads = 2, output_format_json_quote_64bit_integers = 0"

CLEAN = r"""
CREATE TABLE posts ENGINE = Memory AS
WITH
pin AS (
  SELECT ind, any(category) AS category, any(poster_name) AS poster_name, any(follower_count) AS follower_count
  FROM (
    SELECT `index` AS ind, nullIf(category, '') AS category,
      if(poster_name IN ('', 'User Info Error'), NULL, poster_name) AS poster_name,
      if(match(fc, '^[0-9]+(\\.[0-9]+)?[kM]?$'),
         toInt64(round(toFloat64(extract(fc, '^[0-9.]+')) *
           multiIf(endsWith(fc, 'k'), 1000, endsWith(fc, 'M'), 1000000, 1))), NULL) AS follower_count
    FROM (SELECT `index`, category, poster_name, follower_count AS fc FROM file('{dir}/topics/*.pin/*/*.json', 'JSONEachRow',
      '`index` Nullable(Int64), category Nullable(String), poster_name Nullable(String), follower_count Nullable(String)'))
    WHERE `index` IS NOT NULL)
  GROUP BY ind),
geo AS (
  SELECT ind, any(nullIf(country, '')) AS country,
    any(parseDateTimeOrNull(replaceOne(`timestamp`, 'T', ' '), '%Y-%m-%d %H:%i:%s', 'UTC')) AS ts
  FROM file('{dir}/topics/*.geo/*/*.json', 'JSONEachRow',
    'ind Nullable(Int64), `timestamp` Nullable(String), country Nullable(String)')
  WHERE ind IS NOT NULL GROUP BY ind),
usr AS (
  SELECT ind, any(concat(nullIf(first_name, ''), ' ', nullIf(last_name, ''))) AS user_name, any(age) AS age,
    any(parseDateTimeOrNull(replaceOne(date_joined, 'T', ' '), '%Y-%m-%d %H:%i:%s', 'UTC')) AS date_joined
  FROM file('{dir}/topics/*.user/*/*.json', 'JSONEachRow',
    'ind Nullable(Int64), first_name Nullable(String), last_name Nullable(String), age Nullable(Int64), date_joined Nullable(String)')
  WHERE ind IS NOT NULL GROUP BY ind)
SELECT p.ind AS ind, category, poster_name, follower_count, country, toYear(ts) AS post_year,
  user_name, age, date_joined, toYear(date_joined) AS join_year,
  multiIf(age BETWEEN 18 AND 24, '18-24', age BETWEEN 25 AND 35, '25-35', age BETWEEN 36 AND 50, '36-50',
          age > 50, '+50', NULL) AS age_group
FROM pin AS p INNER JOIN geo AS g ON p.ind = g.ind INNER JOIN usr AS u ON p.ind = u.ind
""" + SETTINGS

# ClickHouse resolves an alias before a column of the same name (in WHERE
# too), so results that reuse a column's name are named apart, then renamed.
RENAME = {"top_poster": "poster_name", "top_followers": "follower_count"}

# Most popular category per group; ties to the smallest category.
TOP_CATEGORY = """
      SELECT {by}, argMin(category, (-c, category)) AS category, max(c) AS category_count FROM (
        SELECT {by}, category, count() AS c FROM posts
        WHERE {by} IS NOT NULL AND category IS NOT NULL GROUP BY {by}, category)
      GROUP BY {by} ORDER BY {by}"""

QUESTIONS = {
    "category_by_country": TOP_CATEGORY.format(by="country"),
    "category_by_year": """
      SELECT post_year, category, count() AS category_count FROM posts
      WHERE post_year BETWEEN 2018 AND 2022 AND category IS NOT NULL
      GROUP BY post_year, category ORDER BY post_year, category""",
    "top_user_by_country": """
      SELECT country, argMin(poster_name, (-follower_count, poster_name)) AS top_poster,
             max(follower_count) AS top_followers
      FROM posts WHERE country IS NOT NULL AND poster_name IS NOT NULL AND follower_count IS NOT NULL
      GROUP BY country ORDER BY country""",
    "top_user_overall": """
      SELECT country, max(follower_count) AS top_followers
      FROM posts WHERE country IS NOT NULL AND poster_name IS NOT NULL AND follower_count IS NOT NULL
      GROUP BY country ORDER BY top_followers DESC, country LIMIT 1""",
    "category_by_age_group": TOP_CATEGORY.format(by="age_group"),
    "median_followers_by_age_group": """
      SELECT age_group, quantileExactLow(0.5)(follower_count) AS median_follower_count FROM posts
      WHERE age_group IS NOT NULL AND follower_count IS NOT NULL GROUP BY age_group ORDER BY age_group""",
    "users_joined_by_year": """
      SELECT join_year AS post_year, uniqExact(user_name, age, date_joined) AS number_users_joined
      FROM posts WHERE join_year BETWEEN 2015 AND 2020
        AND user_name IS NOT NULL AND age IS NOT NULL AND date_joined IS NOT NULL
      GROUP BY join_year ORDER BY join_year""",
    "median_followers_by_join_year": """
      SELECT join_year AS post_year, quantileExactLow(0.5)(follower_count) AS median_follower_count FROM posts
      WHERE join_year BETWEEN 2015 AND 2020 AND follower_count IS NOT NULL
      GROUP BY join_year ORDER BY join_year""",
    "median_followers_by_join_year_and_age_group": """
      SELECT age_group, join_year AS post_year, quantileExactLow(0.5)(follower_count) AS median_follower_count
      FROM posts WHERE join_year BETWEEN 2015 AND 2020 AND age_group IS NOT NULL AND follower_count IS NOT NULL
      GROUP BY age_group, join_year ORDER BY age_group, join_year""",
}


def main():
    archive, out = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        s = session.Session(tmp)
        s.query(CLEAN.format(dir=archive.replace("'", "\\'")))
        answers = {}
        for name, sql in QUESTIONS.items():
            res = s.query(sql + " " + QUERY_SETTINGS, "JSON")
            answers[name] = [{RENAME.get(k, k): v for k, v in row.items()} for row in json.loads(res.bytes())["data"]]
        s.close()
    with open(out, "w") as f:
        json.dump(answers, f, indent=1)


if __name__ == "__main__":
    main()
