import sys
def load(f):
    m={}; cur=None
    for l in open(f):
        p=l.split()
        if '-' in p[0] and not p[0].endswith(':') and len(p)>=5:
            s,e=[int(x,16) for x in p[0].split('-')]; cur=(s,e-s,p[5] if len(p)>5 else 'anon'); m[cur[0]]=[cur,0]
        elif p[0]=='Rss:': m[cur[0]][1]=int(p[1])
    return m
a,b=load(sys.argv[1]),load(sys.argv[2])
cats={}
for k,(info,r) in b.items():
    d=r-(a[k][1] if k in a else 0)
    c='slab64k' if info[1]==65536 else ('arena' if info[0]%(64<<20)==0 else info[2])
    cats[c]=cats.get(c,0)+d
print(cats)
