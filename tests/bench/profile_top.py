import sys, collections, re
self_t = collections.Counter(); incl = collections.Counter(); total = 0
for line in open(sys.argv[1]):
    stack, _, n = line.rstrip().rpartition(" ")
    pass
    n = int(n); total += n
    frames = stack.split(";")[1:]
    if not frames: continue
    self_t[re.sub(r":\d+\)", ")", frames[-1])] += n
    seen = set()
    for f in frames:
        f = re.sub(r":\d+\)", ")", f)
        if f not in seen: incl[f] += n; seen.add(f)
print("API samples", total)
print("-- self top 12")
for f, n in self_t.most_common(12): print(f"{100*n/total:5.1f}% {f}")
print("-- inclusive, nexysync/pymongo/falcon/jsonschema frames top 25")
k = [(f, n) for f, n in incl.most_common() if any(s in f for s in ("nexysync_server", "pymongo", "jsonschema", "falcon", "logging", "json"))]
for f, n in k[:25]: print(f"{100*n/total:5.1f}% {f}")
print("-- inclusive nexysync_server frames")
for f, n in [(f, n) for f, n in incl.most_common() if "nexysync_server" in f][:22]: print(f"{100*n/total:5.1f}% {f}")
th = collections.Counter()
for line in open(sys.argv[1]):
    stack, _, n = line.rstrip().rpartition(" ")
    if "_worker" in stack: th[";".join(stack.split(";")[-3:])] += int(n)
print("-- thread pool stacks", th.most_common(3))
