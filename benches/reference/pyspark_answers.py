"""The eight questions (spec section 4) in PySpark, local[2], written the way
the seeds' Databricks notebooks did it: read the topic's JSON, clean with
`regexp_replace` / `when`, `dropDuplicates` on `ind`, inner joins, and
`percentile_approx` for the medians (accuracy 10000: rank error well inside
the spec's 1%).

    python3 benches/reference/pyspark_answers.py ARCHIVE_DIR OUT.json
"""
import json
import sys

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType


def schema(**cols):
    return StructType([StructField(n, t(), True) for n, t in cols.items()])


def nz(col, *bad):
    return F.when(F.col(col).isin("", *bad), None).otherwise(F.col(col))


def ts(col):
    return F.to_timestamp(F.regexp_replace(F.col(col), "T", " "), "yyyy-MM-dd HH:mm:ss")


def main():
    archive, out = sys.argv[1], sys.argv[2]
    spark = (SparkSession.builder.master("local[2]").appName("pinterest-batch")
             .config("spark.sql.shuffle.partitions", "4").config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.driver.memory", "4g").config("spark.sql.session.timeZone", "UTC")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    S, L = StringType, LongType
    read = lambda topic, sch: spark.read.schema(sch).json(f"{archive}/topics/*.{topic}/*/*.json")

    fc = F.col("follower_count")
    df_pin = (read("pin", schema(index=L, follower_count=S, poster_name=S, category=S))
              .withColumnRenamed("index", "ind").dropna(subset=["ind"]).dropDuplicates(["ind"])
              .withColumn("category", nz("category"))
              .withColumn("poster_name", nz("poster_name", "User Info Error"))
              .withColumn("follower_count",
                          F.when(fc.rlike(r"^[0-9]+(\.[0-9]+)?[kM]?$"),
                                 F.round(F.regexp_replace(fc, "[kM]$", "").cast("double") *
                                         F.when(fc.endswith("k"), 1000).when(fc.endswith("M"), 1000000)
                                         .otherwise(1)).cast("long"))))
    df_geo = (read("geo", schema(ind=L, timestamp=S, country=S)).dropna(subset=["ind"]).dropDuplicates(["ind"])
              .withColumn("country", nz("country")).withColumn("post_year", F.year(ts("timestamp"))))
    df_user = (read("user", schema(ind=L, first_name=S, last_name=S, age=L, date_joined=S))
               .dropna(subset=["ind"]).dropDuplicates(["ind"])
               .withColumn("user_name", F.concat(nz("first_name"), F.lit(" "), nz("last_name")))
               .withColumn("date_joined", ts("date_joined")).withColumn("join_year", F.year("date_joined")))
    age = F.col("age")
    posts = (df_pin.join(df_geo, "ind").join(df_user, "ind")
             .withColumn("age_group", F.when(age.between(18, 24), "18-24").when(age.between(25, 35), "25-35")
                         .when(age.between(36, 50), "36-50").when(age > 50, "+50"))
             .select("ind", "category", "poster_name", "follower_count", "country", "post_year",
                     "user_name", "age", "date_joined", "join_year", "age_group")).cache()

    def top_category(by):
        w = Window.partitionBy(by).orderBy(F.desc("category_count"), "category")
        return (posts.dropna(subset=[by, "category"]).groupBy(by, "category")
                .agg(F.count("*").alias("category_count")).withColumn("r", F.row_number().over(w))
                .filter("r = 1").drop("r").orderBy(by))

    def median(keys, years=False):
        q = posts.dropna(subset=[*keys, "follower_count"])
        if years:
            q = q.filter(F.col("join_year").between(2015, 2020))
        return (q.groupBy(*keys).agg(F.percentile_approx("follower_count", 0.5, 10000)
                                     .alias("median_follower_count")).orderBy(*keys))

    w = Window.partitionBy("country").orderBy(F.desc("follower_count"), "poster_name")
    tops = (posts.dropna(subset=["country", "poster_name", "follower_count"])
            .withColumn("r", F.row_number().over(w)).filter("r = 1")
            .select("country", "poster_name", "follower_count").orderBy("country"))
    frames = {
        "category_by_country": top_category("country"),
        "category_by_year": posts.filter(F.col("post_year").between(2018, 2022)).dropna(subset=["category"])
        .groupBy("post_year", "category").agg(F.count("*").alias("category_count")).orderBy("post_year", "category"),
        "top_user_by_country": tops,
        "top_user_overall": tops.orderBy(F.desc("follower_count"), "country").limit(1)
        .select("country", "follower_count"),
        "category_by_age_group": top_category("age_group"),
        "median_followers_by_age_group": median(["age_group"]),
        "users_joined_by_year": posts.filter(F.col("join_year").between(2015, 2020))
        .dropna(subset=["user_name", "age", "date_joined"])
        .groupBy("join_year").agg(F.countDistinct("user_name", "age", "date_joined").alias("number_users_joined"))
        .withColumnRenamed("join_year", "post_year").orderBy("post_year"),
        "median_followers_by_join_year": median(["join_year"], True).withColumnRenamed("join_year", "post_year"),
        "median_followers_by_join_year_and_age_group": median(["age_group", "join_year"], True)
        .withColumnRenamed("join_year", "post_year"),
    }
    answers = {name: [r.asDict() for r in f.collect()] for name, f in frames.items()}
    spark.stop()
    with open(out, "w") as f:
        json.dump(answers, f, indent=1)


if __name__ == "__main__":
    main()
