"""Self cost per function from a callgrind profile, per request: `summary.py FILE N [TOP]`.

Reads the callgrind format directly (name compression included): `fn=` starts a function,
cost lines after it are its own, and the line after each `calls=` is a call's inclusive cost
(skipped here). Also lists who calls memcpy, which is where large futures being moved show.
"""
import collections
import re
import sys

path, n = sys.argv[1], int(sys.argv[2])
top = int(sys.argv[3]) if len(sys.argv) > 3 else 30
names, own, calls = {}, collections.Counter(), collections.Counter()
fn = cfn = None
after_call = False


def name(tok):
    m = re.match(r"\((\d+)\)(?:\s+(.*))?", tok)
    if not m:
        return tok
    i, full = m.groups()
    if full:
        names[i] = full
    return names.get(i, i)


for line in open(path, errors="replace"):
    line = line.rstrip("\n")
    if line.startswith("fn="):
        fn = name(line[3:])
    elif line.startswith("cfn="):
        cfn = name(line[4:])
    elif line.startswith("calls="):
        after_call = True
    elif line[:1].isdigit() or line[:1] in "+-*":
        parts = line.split()
        if len(parts) >= 2:
            if after_call:
                calls[(fn, cfn)] += int(parts[1])
                after_call = False
            else:
                own[fn] += int(parts[1])

total = sum(own.values())
print(f"instructions per request: {total // n} ({total} over {n} requests, all threads)")
for f, c in own.most_common(top):
    print(f"{100 * c / total:5.1f}% {c // n:8d}  {f[:140]}")
movers = collections.Counter()
for (caller, callee), c in calls.items():
    if "memcpy" in (callee or "") or "memmove" in (callee or ""):
        movers[caller] += c
if movers:
    print("memcpy/memmove by caller (per request):")
    for f, c in movers.most_common(8):
        print(f"{c // n:8d}  {f[:140]}")
