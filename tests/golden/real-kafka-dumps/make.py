"""Builds this golden case from the original pipeline's Kafka dumps
(tests/fixtures/*_consumer.json): input/ in the S3-sink layout (flush size 20)
and expected.json / expected_dead_letters.jsonl, computed here independently
of pinstream (spec sections 2-4; medians are the upper median, sorted[n // 2],
which is what pinstream's t-digest returns when every value is its own
centroid, as with this few rows).

Run from the repository root: python3 tests/golden/real-kafka-dumps/make.py
"""
import collections, json, os, shutil
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "..", "fixtures")
FLUSH = 20

def load(t):
    return json.load(open(os.path.join(FIX, f"{t}_consumer.json")))

shutil.rmtree(os.path.join(HERE, "input"), ignore_errors=True)
msgs = {t: load(t) for t in ("pin", "geo", "user")}
for t, ms in msgs.items():
    by_part = collections.defaultdict(list)
    for m in ms:
        by_part[(m["topic"], m["partition"])].append(m)
    for (topic, p), part in by_part.items():
        part.sort(key=lambda m: m["offset"])
        for i in range(0, len(part), FLUSH):
            chunk = part[i:i + FLUSH]
            d = os.path.join(HERE, "input", "topics", topic, f"partition={p}")
            os.makedirs(d, exist_ok=True)
            start = chunk[0]["offset"]
            # offsets in the dumps are consecutive within a chunk
            assert [m["offset"] for m in chunk] == list(range(start, start + len(chunk)))
            with open(os.path.join(d, f"{topic}+{p}+{start:010d}.json"), "w") as f:
                for m in chunk:
                    f.write(json.dumps(m["value"], separators=(",", ":")) + "\n")

def nz(v, bad=()):
    return None if v in ("", None) or v in bad else v

def followers(s):
    if not isinstance(s, str) or not s:
        return None
    mult = {"k": 1000, "M": 1000000}.get(s[-1], 1)
    num = s[:-1] if mult != 1 else s
    try:
        return round(float(num) * mult) if num.replace(".", "", 1).isdigit() else None
    except ValueError:
        return None

def ts(s):
    return datetime.strptime(s.replace("T", " "), "%Y-%m-%d %H:%M:%S")

pins, geos, users, dead = {}, {}, {}, []
for t in ("geo", "pin", "user"):  # archive order: topic, partition, offset
    for m in sorted(msgs[t], key=lambda m: (m["topic"], m["partition"], m["offset"])):
        v = m["value"]
        key = v.get("index") if t == "pin" else v.get("ind")
        if not isinstance(key, int):
            dead.append({"topic": m["topic"], "partition": m["partition"], "offset": m["offset"]})
            continue
        if t == "pin":
            pins[key] = (nz(v.get("category")), nz(v.get("poster_name"), ("User Info Error",)), followers(v.get("follower_count")))
        elif t == "geo":
            geos[key] = (nz(v.get("country")), ts(v["timestamp"]))
        else:
            # The user dump also holds a misplaced geo row: it has an `ind`,
            # so it is a user record whose fields are all missing.
            name = f'{v["first_name"]} {v["last_name"]}' if nz(v.get("first_name")) and nz(v.get("last_name")) else None
            users[key] = (name, v.get("age"), ts(v["date_joined"]) if nz(v.get("date_joined")) else None)

def age_group(a):
    return "18-24" if 18 <= a <= 24 else "25-35" if a <= 35 else "36-50" if a <= 50 else "+50" if a > 50 else None

cc, cy, ca = collections.Counter(), collections.Counter(), collections.Counter()
top = {}
fa, fj, faj = collections.defaultdict(list), collections.defaultdict(list), collections.defaultdict(list)
uj = collections.defaultdict(set)
for k, (cat, poster, fol) in pins.items():
    if k not in geos or k not in users:
        continue
    country, t = geos[k]
    name, age, joined = users[k]
    ag = age_group(age) if age is not None else None
    jy = joined.year if joined else None
    if country and cat: cc[(country, cat)] += 1
    if cat and 2018 <= t.year <= 2022: cy[(t.year, cat)] += 1
    if country and poster and fol is not None:
        best = top.get(country)
        if best is None or fol > best[0] or (fol == best[0] and poster < best[1]):
            top[country] = (fol, poster)
    if ag and cat: ca[(ag, cat)] += 1
    if ag and fol is not None: fa[ag].append(fol)
    if jy is not None and 2015 <= jy <= 2020:
        if name and age is not None:
            uj[jy].add((name, age, joined))
        if fol is not None:
            fj[jy].append(fol)
            if ag: faj[(ag, jy)].append(fol)

def top1(counter, a, b):
    best = {}
    for (x, y), n in counter.items():
        if x not in best or n > best[x][0] or (n == best[x][0] and y < best[x][1]):
            best[x] = (n, y)
    return [{a: x, b: y, "category_count": n} for x, (n, y) in sorted(best.items())]

def med(vs):
    vs = sorted(vs)
    return vs[len(vs) // 2]

overall = sorted(top.items(), key=lambda kv: (-kv[1][0], kv[0]))[:1]
expected = {
    "category_by_country": top1(cc, "country", "category"),
    "category_by_year": [{"post_year": y, "category": c, "category_count": n} for (y, c), n in sorted(cy.items())],
    "top_user_by_country": [{"country": c, "poster_name": p, "follower_count": f} for c, (f, p) in sorted(top.items())],
    "top_user_overall": [{"country": c, "follower_count": f} for c, (f, _) in overall],
    "category_by_age_group": top1(ca, "age_group", "category"),
    "median_followers_by_age_group": [{"age_group": g, "median_follower_count": med(v)} for g, v in sorted(fa.items())],
    "users_joined_by_year": [{"post_year": y, "number_users_joined": len(s)} for y, s in sorted(uj.items())],
    "median_followers_by_join_year": [{"post_year": y, "median_follower_count": med(v)} for y, v in sorted(fj.items())],
    "median_followers_by_join_year_and_age_group": [{"age_group": g, "post_year": y, "median_follower_count": med(v)} for (g, y), v in sorted(faj.items())],
}
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1)
    f.write("\n")
with open(os.path.join(HERE, "expected_dead_letters.jsonl"), "w") as f:
    for d in dead:
        f.write(json.dumps(d) + "\n")
print(f"posts {sum(1 for k in pins if k in geos and k in users)}, dead letters {len(dead)}")
