"""The seeds' `user_posting_emulation.py`, pointed at pinstream.

The original reads a random row of the three RDS tables (pinterest_data,
geolocation_data, user_data) and POSTs each to the Kafka REST Proxy through
API Gateway. RDS is not reachable here, so the rows come from the real tables
in data/ (copies of ../shared/data/real, gzipped: geolocation_data and user_data are complete;
pin rows are the public sample, so rows are drawn among the sampled inds).
Rows keep the types SQLAlchemy gave them (timestamps are datetime objects).
The posting code is the original's: `json.dumps(..., default=str)`, one
record per request, `requests.request("POST", ...)` with the REST Proxy's
content type. The original's `sleep(random.randrange(0, 2))` between posts
is left out to keep the test short.

With MODE `kinesis` it posts as `user_posting_emulation_streaming.py` did:
`requests.request("PUT", <invoke_url>/streams/streaming-<prefix>-<topic>/record)`
with `{"StreamName", "Data": row, "PartitionKey"}` and Content-Type
application/json.

Usage: user_posting_emulation.py INVOKE_URL PREFIX POSTS SENT_DIR DATA_DIR [rest|kinesis]
Writes every row it sent to SENT_DIR/<topic>.jsonl (what a test recomputes
the answers from).
"""
import csv
import datetime
import gzip
import json
import os
import random
import sys

import requests

random.seed(100)

invoke_base, prefix, posts, sent_dir, data_dir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
mode = sys.argv[6] if len(sys.argv) > 6 else "rest"


def when(s):
    return datetime.datetime.strptime(s, "%Y-%m-%d %H:%M:%S")


geo_rows, user_rows, pin_rows = {}, {}, {}
with gzip.open(os.path.join(data_dir, "geolocation_data.csv.gz"), "rt", newline="") as f:
    for r in csv.DictReader(f):
        geo_rows[int(r["ind"])] = {"ind": int(r["ind"]), "timestamp": when(r["timestamp"]),
                                   "latitude": float(r["latitude"]), "longitude": float(r["longitude"]),
                                   "country": r["country"]}
with gzip.open(os.path.join(data_dir, "user_data.csv.gz"), "rt", newline="") as f:
    for r in csv.DictReader(f):
        user_rows[int(r["ind"])] = {"ind": int(r["ind"]), "first_name": r["first_name"], "last_name": r["last_name"],
                                    "age": int(r["age"]), "date_joined": when(r["date_joined"])}
with gzip.open(os.path.join(data_dir, "pin_sample.jsonl.gz"), "rt") as f:
    for line in f:
        r = json.loads(line)
        r.pop("_source", None)
        pin_rows[r["index"]] = r
inds = sorted(i for i in pin_rows if i in geo_rows and i in user_rows)

os.makedirs(sent_dir, exist_ok=True)
sent = {t: open(os.path.join(sent_dir, f"{t}.jsonl"), "w") for t in ("pin", "geo", "user")}


def send_to_kafka(result, topic):
    # As in the seeds: one record per POST, through API Gateway to the REST proxy.
    invoke_url = f"{invoke_base}/topics/{prefix}.{topic}"
    payload = json.dumps({"records": [{"value": result}]}, default=str)
    headers = {"Content-Type": "application/vnd.kafka.json.v2+json"}
    response = requests.request("POST", invoke_url, headers=headers, data=payload)
    if response.status_code != 200:
        print(f"{topic}: HTTP {response.status_code}: {response.text}", file=sys.stderr)
        sys.exit(1)
    sent[topic].write(json.dumps(result, default=str) + "\n")


def send_to_kinesis(result, topic):
    # As in the seeds' streaming script: one record per PUT, through API Gateway to Kinesis.
    stream = f"streaming-{prefix}-{topic}"
    invoke_url = f"{invoke_base}/streams/{stream}/record"
    payload = json.dumps({"StreamName": stream, "Data": result, "PartitionKey": "partition-1"}, default=str)
    headers = {"Content-Type": "application/json"}
    response = requests.request("PUT", invoke_url, headers=headers, data=payload)
    if response.status_code != 200:
        print(f"{topic}: HTTP {response.status_code}: {response.text}", file=sys.stderr)
        sys.exit(1)
    sent[topic].write(json.dumps(result, default=str) + "\n")


send = send_to_kinesis if mode == "kinesis" else send_to_kafka


def run_post_data_loop():
    for _ in range(posts):
        random_row = random.choice(inds)
        pin_result = pin_rows[random_row]
        geo_result = geo_rows[random_row]
        user_result = user_rows[random_row]
        send(pin_result, "pin")
        send(geo_result, "geo")
        send(user_result, "user")


run_post_data_loop()
for f in sent.values():
    f.close()
print(f"sent {posts} posts ({3 * posts} records) to {invoke_base}")
