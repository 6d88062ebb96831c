(function(){
var table=document.getElementById('image-table');if(!table)return;
var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
var text=rows.map(function(r){return r.textContent.toLowerCase();});
rows.forEach(function(r,i){r._i=i;});
var input=document.getElementById('filter'),sel=document.getElementById('status-filter');
var shown=document.getElementById('shown');
function apply(){
 var words=input.value.toLowerCase().split(/\s+/).filter(Boolean);
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
   decodeURIComponent(kv.slice(i+1).replace(/\+/g,' '));});
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
