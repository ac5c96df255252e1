"""The eight questions (spec section 4) in Polars (lazy), over a
pinstream/Confluent S3-sink archive directory: one table per topic keyed by
`ind` (the emulator's re-sends of an `ind` are the same row, so any copy is
the table's row), the spec's cleaning (section 2), an inner join, exact
medians (lower median), 2 threads (POLARS_MAX_THREADS).

    python3 benches/reference/polars_answers.py ARCHIVE_DIR OUT.json
"""
import json
import os
import sys

os.environ.setdefault("POLARS_MAX_THREADS", "2")
import polars as pl  # noqa: E402

S = pl.String


def nz(col, *bad):
    c = pl.col(col)
    return pl.when(c.is_in(["", *bad])).then(None).otherwise(c).alias(col)


def ts(col):
    return pl.col(col).str.replace("T", " ", literal=True).str.strptime(
        pl.Datetime, "%Y-%m-%d %H:%M:%S", strict=False)


def followers():
    fc = pl.col("follower_count")
    ok = fc.str.contains(r"^[0-9]+(\.[0-9]+)?[kM]?$")
    mult = pl.when(fc.str.ends_with("k")).then(1000).when(fc.str.ends_with("M")).then(1_000_000).otherwise(1)
    num = fc.str.extract(r"^([0-9.]+)", 1).cast(pl.Float64)
    return pl.when(ok).then((num * mult).round(0).cast(pl.Int64)).otherwise(None).alias("follower_count")


def posts(archive):
    def scan(topic, schema):
        return pl.scan_ndjson(f"{archive}/topics/*.{topic}/*/*.json", schema=schema)

    pin = (scan("pin", {"index": pl.Int64, "follower_count": S, "poster_name": S, "category": S})
           .rename({"index": "ind"}).drop_nulls("ind").unique("ind")
           .with_columns(nz("category"), nz("poster_name", "User Info Error"), followers()))
    geo = (scan("geo", {"ind": pl.Int64, "timestamp": S, "country": S})
           .drop_nulls("ind").unique("ind")
           .with_columns(nz("country"), ts("timestamp").dt.year().alias("post_year")))
    usr = (scan("user", {"ind": pl.Int64, "first_name": S, "last_name": S, "age": pl.Int64, "date_joined": S})
           .drop_nulls("ind").unique("ind")
           .with_columns(nz("first_name"), nz("last_name"), ts("date_joined").alias("date_joined"))
           .with_columns((pl.col("first_name") + " " + pl.col("last_name")).alias("user_name"),
                         pl.col("date_joined").dt.year().alias("join_year")))
    age = pl.col("age")
    return (pin.join(geo, on="ind").join(usr, on="ind")
            .with_columns(pl.when(age.is_between(18, 24)).then(pl.lit("18-24"))
                          .when(age.is_between(25, 35)).then(pl.lit("25-35"))
                          .when(age.is_between(36, 50)).then(pl.lit("36-50"))
                          .when(age > 50).then(pl.lit("+50")).alias("age_group"))
            .select("ind", "category", "poster_name", "follower_count", "country", "post_year",
                    "user_name", "age", "date_joined", "join_year", "age_group"))


def top_category(p, by):
    return (p.drop_nulls([by, "category"]).group_by(by, "category").agg(pl.len().alias("category_count"))
            .sort([by, "category_count", "category"], descending=[False, True, False])
            .group_by(by, maintain_order=True).first().sort(by))


def median(p, keys, lo=None, hi=None):
    q = p.drop_nulls([*keys, "follower_count"])
    if lo is not None:
        q = q.filter(pl.col("join_year").is_between(lo, hi))
    return (q.group_by(keys).agg(pl.col("follower_count").quantile(0.5, "lower").cast(pl.Int64)
                                 .alias("median_follower_count")).sort(keys))


def main():
    archive, out = sys.argv[1], sys.argv[2]
    p = posts(archive).collect().lazy()
    tops = (p.drop_nulls(["country", "poster_name", "follower_count"])
            .sort(["country", "follower_count", "poster_name"], descending=[False, True, False])
            .group_by("country", maintain_order=True).first()
            .select("country", "poster_name", "follower_count").sort("country"))
    frames = {
        "category_by_country": top_category(p, "country"),
        "category_by_year": p.filter(pl.col("post_year").is_between(2018, 2022)).drop_nulls("category")
        .group_by("post_year", "category").agg(pl.len().alias("category_count")).sort("post_year", "category"),
        "top_user_by_country": tops,
        "top_user_overall": tops.sort(["follower_count", "country"], descending=[True, False]).head(1)
        .select("country", "follower_count"),
        "category_by_age_group": top_category(p, "age_group"),
        "median_followers_by_age_group": median(p, ["age_group"]),
        "users_joined_by_year": p.filter(pl.col("join_year").is_between(2015, 2020))
        .drop_nulls(["user_name", "age", "date_joined"])
        .group_by("join_year").agg(pl.struct("user_name", "age", "date_joined").n_unique()
                                   .alias("number_users_joined"))
        .sort("join_year").rename({"join_year": "post_year"}),
        "median_followers_by_join_year": median(p, ["join_year"], 2015, 2020).rename({"join_year": "post_year"}),
        "median_followers_by_join_year_and_age_group": median(p, ["age_group", "join_year"], 2015, 2020)
        .rename({"join_year": "post_year"}),
    }
    answers = {name: f.collect().to_dicts() for name, f in frames.items()}
    with open(out, "w") as f:
        json.dump(answers, f, indent=1)


if __name__ == "__main__":
    main()
