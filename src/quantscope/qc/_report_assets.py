"""The inline CSS and JavaScript of the HTML quality-control report.

Static text (no data goes into them): :data:`_CSS` styles the page (the colour bar of the
profiles uses the viridis stops of :mod:`._report_graphics`); :data:`_JS` sorts and filters the
table of all images, opens it sorted and filtered from the link's ``#sort=...&dir=...&status=
...&q=...``, and lists the images of a well when its heatmap cell is clicked.
"""

from __future__ import annotations

from ._report_graphics import _VIRIDIS

_GRADIENT = ", ".join(_VIRIDIS)

_CSS = (
    """
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
color:var(--fg);background:var(--bg);margin:0;padding:16px 24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:0 0 8px}
h3{font-size:15px;margin:18px 0 8px}
.repo{font-weight:400;color:var(--muted);font-size:15px;word-break:break-all}
.muted{color:var(--muted)}.small{font-size:12px}small{font-weight:400}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.top,.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px;
margin:0 0 16px}
.counts{display:flex;gap:12px;margin:10px 0}
.count{border-radius:6px;padding:6px 14px;min-width:110px}
.count b{display:block;font-size:24px}.count span{font-size:12px}
.st-pass.count,.badge.st-pass{background:#dafbe1;color:#116329}
.st-warn.count,.badge.st-warn{background:#fff8c5;color:#7d4e00}
.st-fail.count,.badge.st-fail{background:#ffebe9;color:#a40e26}
.st-none.count,.badge.st-none{background:#eaeef2;color:#57606a}
.badge{border-radius:10px;padding:1px 8px;font-size:12px;font-weight:600;white-space:nowrap}
.bar{display:flex;height:8px;border-radius:4px;overflow:hidden;margin:4px 0 14px;max-width:600px}
.problems{border:1px solid #cf222e;background:#ffebe9;border-radius:6px;padding:6px 12px}
nav{display:flex;gap:16px;margin-top:12px;flex-wrap:wrap}
nav a{color:#0969da;text-decoration:none}nav a:hover{text-decoration:underline}
table{border-collapse:collapse}
th,td{padding:3px 8px;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}
.summary th,.summary td{font-size:13px}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.key{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px}
.key.fail{border:2.5px solid #cf222e}.key.warn{border:1.5px solid #d4a72c}
.hm-grid{display:flex;flex-wrap:wrap;gap:16px 36px}
.hist-grid{display:flex;flex-wrap:wrap;gap:14px 22px}
.hm-metric h4{font-size:13px;margin:0 0 4px}.maps{display:flex;flex-wrap:wrap;gap:10px 16px}
figure{margin:0}figcaption{font-size:12px;margin-bottom:2px}
svg .lbl{fill:#57606a;text-anchor:middle;font-family:system-ui,sans-serif}
svg .axis{stroke:#8c959f;stroke-width:1}
svg rect.well{cursor:pointer}svg rect.well:hover{stroke:#1f2328;stroke-width:2}
.worst{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:12px}
.thumbcard,.profile{border:1px solid var(--line);border-radius:6px;padding:10px;background:#fff}
.thumbcard[data-status=fail]{border-left:4px solid #cf222e}
.thumbcard[data-status=warn]{border-left:4px solid #d4a72c}
.thumbcard .name{word-break:break-all}
.thumbs{display:flex;flex-wrap:wrap;gap:6px;margin:8px 0}
.thumbs img{display:block;width:96px;height:96px;object-fit:contain;background:#000;
border-radius:3px}
.thumbs figure:first-child img{width:128px;height:128px}
.thumbs figcaption{text-align:center;max-width:128px;overflow:hidden;text-overflow:ellipsis;
white-space:nowrap;margin:2px 0 0}
.nothumb{width:96px;height:96px;background:#eaeef2;color:var(--muted);font-size:12px;display:flex;
align-items:center;justify-content:center;border-radius:3px}
.reasons{margin:0;padding-left:18px;font-size:12.5px}
.profiles{display:flex;flex-wrap:wrap;gap:12px}
.profile .thumbs figcaption{max-width:none;text-align:left;white-space:normal}
.profile img.field,.profile .thumbs figure:first-child img{width:192px;height:auto;
object-fit:contain;background:#fff}
.cbar{display:block;height:8px;width:192px;border-radius:2px;margin:3px 0 1px;
background:linear-gradient(to right,GRADIENT)}
.cbar-l,.cbar-r{display:inline-block;width:96px;font-size:11px;color:var(--muted)}.cbar-r{text-align:right}
.filters{display:flex;gap:10px;align-items:center;margin-bottom:6px}
.filters input{flex:0 1 380px;padding:5px 8px;border:1px solid var(--line);border-radius:6px}
.filters select{padding:5px;border:1px solid var(--line);border-radius:6px}
.scroll{overflow:auto;max-height:80vh;border:1px solid #eaeef2;border-radius:6px}
#image-table{font-size:12.5px;width:100%}
#image-table thead th{position:sticky;top:0;background:#f6f8fa;cursor:pointer;white-space:nowrap;
user-select:none;border-bottom:1px solid var(--line);vertical-align:bottom}
#image-table thead th:hover{background:#eaeef2}
#image-table th[aria-sort=ascending]::after{content:" ▲";font-size:10px}
#image-table th[aria-sort=descending]::after{content:" ▼";font-size:10px}
#image-table td.reasons{min-width:260px;max-width:460px;font-size:11.5px;color:#57606a}
#image-table td.name{max-width:260px;word-break:break-all}
#image-table tr.st-fail td:first-child{box-shadow:inset 3px 0 #cf222e}
#image-table tr.st-warn td:first-child{box-shadow:inset 3px 0 #d4a72c}
td.flag{color:#a40e26;font-weight:700}
footer{margin:8px 0 24px;font-size:12px}
""".replace("GRADIENT", _GRADIENT)
    .strip()
    .replace("\n", "")
)

_JS = """
(function(){
var table=document.getElementById('image-table');if(!table)return;
var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
var text=rows.map(function(r){return r.textContent.toLowerCase();});
rows.forEach(function(r,i){r._i=i;});
var input=document.getElementById('filter'),sel=document.getElementById('status-filter');
var shown=document.getElementById('shown');
function apply(){
 var words=input.value.toLowerCase().split(/\\s+/).filter(Boolean);
 var st=sel.value?sel.value.split(' '):null,n=0;
 rows.forEach(function(r,i){
  var ok=(!st||st.some(function(s){return r.classList.contains('st-'+s);}))&&
   words.every(function(w){return text[i].indexOf(w)>=0;});
  r.style.display=ok?'':'none';if(ok)n++;});
 shown.textContent=n+' of '+rows.length+(rows.length==1?' image':' images');}
input.addEventListener('input',apply);sel.addEventListener('change',apply);
var heads=table.tHead.rows[0].cells;
function sortBy(col,dir){
 var th=heads[col],num=th.dataset.type==='num';
 Array.prototype.forEach.call(heads,function(h){h.removeAttribute('aria-sort');});
 th.setAttribute('aria-sort',dir>0?'ascending':'descending');
 function key(r){var c=r.cells[col];return c.hasAttribute('data-v')?c.getAttribute('data-v'):
  c.textContent;}
 rows.sort(function(a,b){var x=key(a),y=key(b),d;
  if(num){var fx=x===''?NaN:parseFloat(x),fy=y===''?NaN:parseFloat(y);
   if(isNaN(fx)||isNaN(fy))return isNaN(fx)===isNaN(fy)?a._i-b._i:(isNaN(fx)?1:-1);
   d=fx-fy;}else{d=x.localeCompare(y,undefined,{numeric:true});}
  return d*dir||a._i-b._i;});
 var frag=document.createDocumentFragment();rows.forEach(function(r){frag.appendChild(r);});
 body.appendChild(frag);
 text=rows.map(function(r){return r.textContent.toLowerCase();});}
Array.prototype.forEach.call(heads,function(th,col){
 th.addEventListener('click',function(){
  sortBy(col,th.getAttribute('aria-sort')==='ascending'?-1:1);});});
// links such as qc.html#sort=snr:DAPI&dir=desc&status=fail&q=A01 open the table so
function fromHash(){
 if(typeof location==='undefined'||!location.hash)return;
 var h={};location.hash.slice(1).split('&').forEach(function(kv){var i=kv.indexOf('=');
  if(i>0)h[decodeURIComponent(kv.slice(0,i))]=
   decodeURIComponent(kv.slice(i+1).replace(/\\+/g,' '));});
 if('q' in h)input.value=h.q;if('status' in h)sel.value=h.status;
 if('sort' in h){for(var col=0;col<heads.length;col++){
  if(heads[col].getAttribute('data-key')===h.sort){sortBy(col,h.dir==='desc'?-1:1);break;}}}
 apply();}
fromHash();
if(typeof window!=='undefined')window.addEventListener('hashchange',fromHash);
document.querySelectorAll('rect.well').forEach(function(w){
 w.addEventListener('click',function(){input.value=w.getAttribute('data-q');sel.value='';apply();
  document.getElementById('images').scrollIntoView();});});
})();
""".strip()
