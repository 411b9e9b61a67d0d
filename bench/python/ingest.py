"""The ingester a user would write instead of midi-corpus, for the bench's side-by-side (bench/python-ingester.ts).

mido parses, psycopg2 writes: two processes, each with one connection, each taking half of the files; every 100
files one executemany and a commit. A file whose bytes hash as recorded is not parsed again, so a rerun over an
unchanged corpus only reads and hashes. Run with Debian's /usr/bin/python3 (bench/python/python-deps.sh installs
python3-mido and python3-psycopg2).

    /usr/bin/python3 ingest.py --root DIR --corpus KEY [--processes 2] [--batch 100]   (DATABASE_URL in the env)

Prints one JSON line: files, parsed, unchanged, failed, seconds.
"""

import argparse
import hashlib
import io
import json
import multiprocessing
import os
import sys
import time

import mido
import psycopg2
import psycopg2.extras

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS py_ingest;
CREATE TABLE IF NOT EXISTS py_ingest.files (
  corpus text NOT NULL,
  path text NOT NULL,
  size_bytes bigint NOT NULL,
  sha256 bytea NOT NULL,
  ok boolean NOT NULL,
  error text,
  format smallint,
  ticks_per_beat integer,
  track_count integer,
  note_count integer,
  duration_seconds double precision,
  tempo_bpm double precision[],
  time_signatures text[],
  key_signature text,
  has_drums boolean,
  programs integer[],
  channels integer[],
  PRIMARY KEY (corpus, path)
);
"""

UPSERT = """
INSERT INTO py_ingest.files (corpus, path, size_bytes, sha256, ok, error, format, ticks_per_beat, track_count,
  note_count, duration_seconds, tempo_bpm, time_signatures, key_signature, has_drums, programs, channels)
VALUES (%(corpus)s, %(path)s, %(size)s, %(sha256)s, %(ok)s, %(error)s, %(format)s, %(ticks_per_beat)s,
  %(track_count)s, %(note_count)s, %(duration)s, %(tempo_bpm)s, %(time_signatures)s, %(key_signature)s,
  %(has_drums)s, %(programs)s, %(channels)s)
ON CONFLICT (corpus, path) DO UPDATE SET size_bytes = EXCLUDED.size_bytes, sha256 = EXCLUDED.sha256,
  ok = EXCLUDED.ok, error = EXCLUDED.error, format = EXCLUDED.format, ticks_per_beat = EXCLUDED.ticks_per_beat,
  track_count = EXCLUDED.track_count, note_count = EXCLUDED.note_count,
  duration_seconds = EXCLUDED.duration_seconds, tempo_bpm = EXCLUDED.tempo_bpm,
  time_signatures = EXCLUDED.time_signatures, key_signature = EXCLUDED.key_signature,
  has_drums = EXCLUDED.has_drums, programs = EXCLUDED.programs, channels = EXCLUDED.channels
"""


def analyse(data):
    """What a user's script records of a file: mido's view of it, and the figures most people ask for."""
    mid = mido.MidiFile(file=io.BytesIO(data))
    notes = 0
    tempos = []
    meters = []
    key = None
    programs = set()
    channels = set()
    for track in mid.tracks:
        for msg in track:
            if msg.type == "note_on" and msg.velocity > 0:
                notes += 1
                channels.add(msg.channel)
            elif msg.type == "set_tempo":
                tempos.append(round(mido.tempo2bpm(msg.tempo), 3))
            elif msg.type == "time_signature":
                meters.append(f"{msg.numerator}/{msg.denominator}")
            elif msg.type == "key_signature" and key is None:
                key = msg.key
            elif msg.type == "program_change":
                programs.add(msg.program)
    return {
        "format": mid.type,
        "ticks_per_beat": mid.ticks_per_beat,
        "track_count": len(mid.tracks),
        "note_count": notes,
        "duration": mid.length,
        "tempo_bpm": tempos,
        "time_signatures": meters,
        "key_signature": key,
        "has_drums": 9 in channels,
        "programs": sorted(programs),
        "channels": sorted(channels),
    }


EMPTY = {k: None for k in ("format", "ticks_per_beat", "track_count", "note_count", "duration", "tempo_bpm",
                           "time_signatures", "key_signature", "has_drums", "programs", "channels")}


def ingest(url, root, corpus, paths, batch_size, out):
    conn = psycopg2.connect(url, application_name="py-ingest")
    counts = {"files": len(paths), "parsed": 0, "unchanged": 0, "failed": 0}
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT path, sha256 FROM py_ingest.files WHERE corpus = %s AND path = ANY(%s)",
                        (corpus, paths))
            known = {p: bytes(h) for p, h in cur.fetchall()}
        conn.commit()
        batch = []
        for rel in paths:
            with open(os.path.join(root, rel), "rb") as f:
                data = f.read()
            digest = hashlib.sha256(data).digest()
            if known.get(rel) == digest:
                counts["unchanged"] += 1
                continue
            row = {"corpus": corpus, "path": rel, "size": len(data), "sha256": digest}
            try:
                row.update(analyse(data), ok=True, error=None)
                counts["parsed"] += 1
            except Exception as e:  # a broken file is recorded as failed, as a careful user would
                row.update(EMPTY, ok=False, error=str(e))
                counts["failed"] += 1
            batch.append(row)
            if len(batch) >= batch_size:
                with conn.cursor() as cur:
                    cur.executemany(UPSERT, batch)
                conn.commit()
                batch = []
        if batch:
            with conn.cursor() as cur:
                cur.executemany(UPSERT, batch)
            conn.commit()
    finally:
        conn.close()
    out.put(counts)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    url = os.environ["DATABASE_URL"]
    started = time.monotonic()
    paths = sorted(
        os.path.relpath(os.path.join(d, f), args.root)
        for d, _, files in os.walk(args.root)
        for f in files
        if f.lower().endswith((".mid", ".midi"))
    )
    conn = psycopg2.connect(url, application_name="py-ingest")
    with conn, conn.cursor() as cur:
        cur.execute(SCHEMA)
    conn.close()
    out = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=ingest, args=(url, args.root, args.corpus, paths[i :: args.processes],
                                                     args.batch, out))
        for i in range(args.processes)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    # A process that died put nothing: fail rather than wait for its figures.
    if any(p.exitcode != 0 for p in procs):
        sys.exit(1)
    results = [out.get(timeout=10) for _ in procs]
    total = {k: sum(r[k] for r in results) for k in results[0]}
    total["seconds"] = time.monotonic() - started
    print(json.dumps(total))


if __name__ == "__main__":
    main()
