"""The eight questions (spec section 4) in DuckDB, over a pinstream/Confluent
S3-sink archive directory: one table per topic keyed by `ind` (every copy
of an `ind` that the emulator re-sends is the same row, so any one copy is
the table's row), the spec's cleaning (section 2), an inner join, exact
medians (quantile_disc), 2 threads.

    python3 benches/reference/duckdb_answers.py ARCHIVE_DIR OUT.json
"""
import json
import sys

import duckdb

SQL_CLEAN = r"""
CREATE TEMP TABLE pin AS
SELECT DISTINCT ON (ind) ind, category, poster_name,
  CASE WHEN regexp_full_match(fc, '[0-9]+(\.[0-9]+)?[kM]?') THEN
    CAST(round(CAST(regexp_extract(fc, '^[0-9.]+') AS DOUBLE) *
      CASE right(fc, 1) WHEN 'k' THEN 1000 WHEN 'M' THEN 1000000 ELSE 1 END) AS BIGINT)
  END AS follower_count
FROM (
  SELECT "index" AS ind, NULLIF(category, '') AS category,
         CASE WHEN poster_name IN ('', 'User Info Error') THEN NULL ELSE poster_name END AS poster_name,
         follower_count AS fc
  FROM read_json('{dir}/topics/*.pin/*/*.json', format = 'newline_delimited',
                 columns = {{"index": 'BIGINT', category: 'VARCHAR', poster_name: 'VARCHAR', follower_count: 'VARCHAR'}})
  WHERE "index" IS NOT NULL
);
CREATE TEMP TABLE geo AS
SELECT DISTINCT ON (ind) ind, NULLIF(country, '') AS country,
  try_strptime(replace("timestamp", 'T', ' '), '%Y-%m-%d %H:%M:%S') AS ts
FROM read_json('{dir}/topics/*.geo/*/*.json', format = 'newline_delimited',
               columns = {{ind: 'BIGINT', "timestamp": 'VARCHAR', country: 'VARCHAR'}})
WHERE ind IS NOT NULL;
CREATE TEMP TABLE usr AS
SELECT DISTINCT ON (ind) ind, NULLIF(first_name, '') || ' ' || NULLIF(last_name, '') AS user_name, age,
  try_strptime(replace(date_joined, 'T', ' '), '%Y-%m-%d %H:%M:%S') AS date_joined
FROM read_json('{dir}/topics/*.user/*/*.json', format = 'newline_delimited',
               columns = {{ind: 'BIGINT', first_name: 'VARCHAR', last_name: 'VARCHAR', age: 'BIGINT', date_joined: 'VARCHAR'}})
WHERE ind IS NOT NULL;
CREATE TEMP TABLE posts AS
SELECT p.ind, p.category, p.poster_name, p.follower_count, g.country, year(g.ts) AS post_year,
  u.user_name, u.age, u.date_joined, year(u.date_joined) AS join_year,
  CASE WHEN u.age BETWEEN 18 AND 24 THEN '18-24' WHEN u.age BETWEEN 25 AND 35 THEN '25-35'
       WHEN u.age BETWEEN 36 AND 50 THEN '36-50' WHEN u.age > 50 THEN '+50' END AS age_group
FROM pin p JOIN geo g USING (ind) JOIN usr u USING (ind);
"""

# Most popular category per group; ties to the smallest category.
TOP_CATEGORY = """
      SELECT {by}, category, category_count FROM (
        SELECT {by}, category, count(*) AS category_count,
          row_number() OVER (PARTITION BY {by} ORDER BY count(*) DESC, category) AS r
        FROM posts WHERE {by} IS NOT NULL AND category IS NOT NULL GROUP BY {by}, category)
      WHERE r = 1 ORDER BY {by}"""

QUESTIONS = {
    "category_by_country": TOP_CATEGORY.format(by="country"),
    "category_by_year": """
      SELECT post_year, category, count(*) AS category_count FROM posts
      WHERE post_year BETWEEN 2018 AND 2022 AND category IS NOT NULL
      GROUP BY post_year, category ORDER BY post_year, category""",
    "top_user_by_country": """
      SELECT country, arg_min(poster_name, (-follower_count, poster_name)) AS poster_name,
             max(follower_count) AS follower_count
      FROM posts WHERE country IS NOT NULL AND poster_name IS NOT NULL AND follower_count IS NOT NULL
      GROUP BY country ORDER BY country""",
    "top_user_overall": """
      SELECT country, max(follower_count) AS follower_count
      FROM posts WHERE country IS NOT NULL AND poster_name IS NOT NULL AND follower_count IS NOT NULL
      GROUP BY country ORDER BY follower_count DESC, country LIMIT 1""",
    "category_by_age_group": TOP_CATEGORY.format(by="age_group"),
    "median_followers_by_age_group": """
      SELECT age_group, quantile_disc(follower_count, 0.5) AS median_follower_count FROM posts
      WHERE age_group IS NOT NULL AND follower_count IS NOT NULL GROUP BY age_group ORDER BY age_group""",
    "users_joined_by_year": """
      SELECT join_year AS post_year, count(DISTINCT (user_name, age, date_joined)) AS number_users_joined
      FROM posts WHERE join_year BETWEEN 2015 AND 2020
        AND user_name IS NOT NULL AND age IS NOT NULL AND date_joined IS NOT NULL
      GROUP BY join_year ORDER BY join_year""",
    "median_followers_by_join_year": """
      SELECT join_year AS post_year, quantile_disc(follower_count, 0.5) AS median_follower_count FROM posts
      WHERE join_year BETWEEN 2015 AND 2020 AND follower_count IS NOT NULL
      GROUP BY join_year ORDER BY join_year""",
    "median_followers_by_join_year_and_age_group": """
      SELECT age_group, join_year AS post_year, quantile_disc(follower_count, 0.5) AS median_follower_count
      FROM posts WHERE join_year BETWEEN 2015 AND 2020 AND age_group IS NOT NULL AND follower_count IS NOT NULL
      GROUP BY age_group, join_year ORDER BY age_group, join_year""",
}


def connect(archive):
    """A connection holding the cleaned `posts` table (also used by check_answers.py)."""
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute(SQL_CLEAN.format(dir=archive.replace("'", "''")))
    return con


def main():
    archive, out = sys.argv[1], sys.argv[2]
    con = connect(archive)
    answers = {}
    for name, sql in QUESTIONS.items():
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description]
        answers[name] = [dict(zip(cols, row)) for row in cur.fetchall()]
    with open(out, "w") as f:
        json.dump(answers, f, indent=1)


if __name__ == "__main__":
    main()
