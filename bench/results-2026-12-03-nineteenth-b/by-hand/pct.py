import glob,collections,statistics as st,sys
names=sys.argv[1].split(','); base=names[0]
d=collections.defaultdict(dict)
for f in glob.glob('/tmp/pe/tl/*'):
    b=f.split('/')[-1]; name,r=b.split('.')[0].rsplit('_r',1)
    d[name].setdefault(r,[]).extend(int(l.split()[2]) for l in open(f))
P=[50,75,90,95,99,99.9]
def pc(v,p): v=sorted(v); return v[min(len(v)-1,int(len(v)*p/100))]
for n in names:
    rs=d[n]; allv=[x for v in rs.values() for x in v]
    row=[pc(allv,p) for p in P]; mean=st.mean(allv)
    diffs=[[pc(rs[r],p)-pc(d[base][r],p) for r in rs if r in d[base]] for p in P]
    print('%-5s pooled '%n+' '.join('p%s=%d'%(p,x) for p,x in zip(P,row))+' mean=%.0f'%mean)
    print('      paired median diff vs %s: '%base+' '.join('p%s %+d(%d/%d below)'%(p,st.median(df),sum(x<0 for x in df),len(df)) for p,df in zip(P,diffs)))
