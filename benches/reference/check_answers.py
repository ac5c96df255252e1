"""Checks that every engine gave the same answers to the eight questions.

    python3 benches/reference/check_answers.py ARCHIVE_DIR BASE.json OTHER.json...

Counts, categories, names and maxima must be identical (rows compared as
sets, keyed by the question's key columns). A median is right when its rank
error is at most 1% (spec section 4): at most 51% of the group's values lie
below it and at least 49% at or below it; the groups' values come from the
archive itself (DuckDB's cleaned `posts`, duckdb_answers.py). Exits 1 and
names every difference when any answer disagrees.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import duckdb_answers  # noqa: E402

# question -> (key columns, median column or None, SQL filter of its values)
QUESTIONS = {
    "category_by_country": (["country"], None, None),
    "category_by_year": (["post_year", "category"], None, None),
    "top_user_by_country": (["country"], None, None),
    "top_user_overall": ([], None, None),
    "category_by_age_group": (["age_group"], None, None),
    "median_followers_by_age_group": (["age_group"], "median_follower_count", "TRUE"),
    "users_joined_by_year": (["post_year"], None, None),
    "median_followers_by_join_year": (["post_year"], "median_follower_count", "join_year BETWEEN 2015 AND 2020"),
    "median_followers_by_join_year_and_age_group":
        (["age_group", "post_year"], "median_follower_count", "join_year BETWEEN 2015 AND 2020"),
}

def norm(v):
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def rows(answer, keys):
    out = {}
    for r in answer:
        r = {k: norm(v) for k, v in r.items()}
        out[tuple(r[k] for k in keys)] = r
    return out


def main():
    archive, base_path, others = sys.argv[1], sys.argv[2], sys.argv[3:]
    base = json.load(open(base_path))
    con = None
    problems = []
    for other_path in [base_path, *others]:
        other = json.load(open(other_path))
        label = os.path.basename(other_path)
        for q, (keys, median, where) in QUESTIONS.items():
            if q not in other:
                problems.append(f"{label}: no answer {q}")
                continue
            a, b = rows(base[q], keys), rows(other[q], keys)
            if set(a) != set(b):
                problems.append(f"{label}: {q}: groups differ: only in base {sorted(set(a) - set(b), key=str)[:5]}, "
                                f"only here {sorted(set(b) - set(a), key=str)[:5]}")
                continue
            for k in a:
                if median is None:
                    if a[k] != b[k]:
                        problems.append(f"{label}: {q}: {k}: base {a[k]} here {b[k]}")
                    continue
                if con is None:
                    con = duckdb_answers.connect(archive)
                conds = [where, "follower_count IS NOT NULL"]
                for col in keys:
                    posts_col = "join_year" if col == "post_year" else col
                    conds.append(f"{posts_col} = ?")
                v = b[k][median]
                n, below, at_most = con.execute(
                    f"SELECT count(*), count(*) FILTER (follower_count < ?), count(*) FILTER (follower_count <= ?) "
                    f"FROM posts WHERE {' AND '.join(conds)}", [v, v, *k]).fetchone()
                if n == 0 or below > 0.51 * n or at_most < 0.49 * n:
                    problems.append(f"{label}: {q}: {k}: median {v} has rank {below}..{at_most} of {n} (outside 49%..51%)")
    if problems:
        print("ANSWERS DIFFER:", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        sys.exit(1)
    print(f"answers agree: {base_path} and {len(others)} others, all nine questions "
          f"(counts exact, medians within 1% rank)")


if __name__ == "__main__":
    main()
