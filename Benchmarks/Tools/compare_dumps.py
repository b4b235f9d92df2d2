import sys
def varint(b, i):
    v=0; s=0
    while True:
        x=b[i]; i+=1; v|=(x&0x7f)<<s; s+=7
        if x<0x80: return v,i
def pb_families(data):
    out=[]; i=0
    while i<len(data):
        n,i=varint(data,i); msg=data[i:i+n]; i+=n
        assert msg[0]==0x0a; l,j=varint(msg,1); name=msg[j:j+l].decode()
        out.append((name,msg))
    return out
def volatile(name): return name.startswith("danube_agent_") or name.startswith("process_")
def text_lines(data):
    return [l for l in data.split(b"\n") if not any(k in l.split(b"{")[0].split(b" ")[0:3][-1] if False else False for k in [])]
for f in sys.argv[1:]:
    old=open("/tmp/old-dump/"+f,"rb").read(); new=open("/tmp/new-dump/"+f,"rb").read()
    if f.endswith("protobuf"):
        a=[x for x in pb_families(old) if not volatile(x[0])]; b=[x for x in pb_families(new) if not volatile(x[0])]
        print(f, "families", len(a), len(b), "identical" if a==b else "DIFFER", "agent families", len(pb_families(old))-len(a), len(pb_families(new))-len(b))
        if a!=b:
            for x,y in zip(a,b):
                if x!=y: print(" first diff", x[0]); break
    else:
        def keep(l):
            t=l.split(b" ")
            name = t[2] if l.startswith(b"#") and len(t)>2 else t[0].split(b"{")[0]
            return not (volatile(name.decode()))
        a=[l for l in old.split(b"\n") if keep(l)]; b=[l for l in new.split(b"\n") if keep(l)]
        print(f, "lines", len(a), len(b), "identical" if a==b else "DIFFER")
        # agent section family names, same?
        fam=lambda d: [l.split(b" ")[2] for l in d.split(b"\n") if l.startswith(b"# TYPE")]
        print("  family order same:", fam(old)==fam(new))
