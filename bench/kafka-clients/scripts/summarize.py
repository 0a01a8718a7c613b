import json, sys
def murmur2(data):
    m, r = 0x5bd1e995, 24
    h = (0x9747b28c ^ len(data)) & 0xffffffff
    n = len(data) // 4
    for i in range(n):
        k = int.from_bytes(data[4*i:4*i+4], "little")
        k = (k * m) & 0xffffffff; k ^= k >> r; k = (k * m) & 0xffffffff
        h = (h * m) & 0xffffffff; h ^= k
    t = data[4*n:]
    if len(t) == 3: h ^= t[2] << 16
    if len(t) >= 2: h ^= t[1] << 8
    if len(t) >= 1: h ^= t[0]; h = (h * m) & 0xffffffff
    h ^= h >> 13; h = (h * m) & 0xffffffff; h ^= h >> 15
    return h
assert murmur2(b"21") == (-973932308) & 0xffffffff
def part(key, n=3): return (murmur2(key.encode()) & 0x7fffffff) % n
rows = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"): continue
    r = json.loads(line); rows.setdefault(r["variant"], []).append(r)
def q(v, f):
    v = sorted(v); return v[round((len(v) - 1) * f)]
print("| client | processes | first publish median | p90 | min | steady-state produce median (per-process medians) | p90 | partition = murmur2 |")
print("|---|---|---|---|---|---|---|---|")
for k, rs in rows.items():
    ok = [r for r in rs if "first_ms" in r]
    f = [r["first_ms"] for r in ok]; s = [r["steady_median_ms"] for r in ok]
    mm = all(r.get("partition") == part(r["key"]) for r in ok)
    print(f"| {k} | {len(ok)}/{len(rs)} | {q(f,.5):.2f} ms | {q(f,.9):.2f} ms | {min(f):.2f} ms | {q(s,.5):.2f} ms | {q(s,.9):.2f} ms | {mm} |")
