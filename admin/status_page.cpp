#include "admin/status_page.hpp"

namespace veer::admin {

std::string_view status_page_html() {
    return R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>veer status</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;background:#fafafa;color:#222}
h1{font-size:20px;margin:0 0 4px} .muted{color:#777}
.row{display:flex;gap:16px;flex-wrap:wrap;margin:12px 0}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px 16px;min-width:220px}
.big{font-size:26px;font-weight:600}
.state-rolled_back{color:#b00020}.state-promoted{color:#107c10}.state-progressing,.state-baking{color:#0b5cad}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}
th{background:#f0f0f0}td.l,th.l{text-align:left}
.bar{height:14px;background:#e3e3e3;border-radius:7px;overflow:hidden;width:260px}
.bar>div{height:100%;background:#2e7d32}
canvas{background:#fff;border:1px solid #ddd;border-radius:6px}
.bad{color:#b00020;font-weight:600}
#events td:first-child{white-space:nowrap}
</style></head><body>
<h1>veer</h1><div class="muted" id="updated">loading…</div>
<div class="row">
 <div class="card"><div class="muted">state</div><div class="big" id="state">-</div><div id="paused" class="muted"></div></div>
 <div class="card"><div class="muted">canary weight</div><div class="big" id="weight">-</div>
   <div class="bar"><div id="weightbar" style="width:0"></div></div><div class="muted" id="roles"></div></div>
 <div class="card"><div class="muted">judge</div><div class="big" id="verdict">-</div><div class="muted" id="verdict_reason"></div></div>
</div>
<table id="pools"><thead><tr><th class="l">pool</th><th class="l">role</th><th>requests</th><th>rps</th><th>error rate</th>
<th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th class="l">endpoints</th></tr></thead><tbody></tbody></table>
<div id="fleet" hidden><h2 style="font-size:16px">fleet <span class="muted" id="fleet_head"></span></h2>
<table id="instances"><thead><tr><th class="l">instance</th><th class="l">role</th><th>report age ms</th><th class="l">requests / failures by pool</th></tr></thead><tbody></tbody></table></div>
<h2 style="font-size:16px">last minutes</h2>
<canvas id="chart" width="900" height="220"></canvas>
<div class="muted">solid: error rate (left axis, %) · dashed: p99 ms (right axis) · per pool, one point a second · vertical lines: events · <span id="history_points"></span></div>
<div class="muted" id="marks"></div>
<h2 style="font-size:16px">events</h2>
<table id="events"><thead><tr><th class="l">time</th><th class="l">kind</th><th class="l">by</th><th class="l">reason</th></tr></thead><tbody></tbody></table>
<script>
const history = {}; const colors = ['#0b5cad', '#2e7d32', '#b26a00', '#6a1b9a'];
const marks = []; const seen = new Set(); let loaded = false;
function mark(e){ const k = e.time + e.kind; if (seen.has(k)) return; seen.add(k); marks.push({t: Date.parse(e.time), kind: e.kind}); }
// The chart starts full: veer keeps the last 15 minutes itself (GET /history).
async function load_history(){
  const h = await (await fetch('/history',{cache:'no-store'})).json();
  const from = Math.max(0, h.t.length - 300);
  for (const [name,p] of Object.entries(h.pools))
    history[name] = h.t.slice(from).map((t,i)=>({t: t*1000, e: p.error_rate[from+i], p99: p.p99_ms[from+i]}));
  (h.events||[]).forEach(mark);
  document.getElementById('history_points').textContent = (h.t.length - from) + ' points from veer\'s history';
}
function esc(s){return String(s).replace(/[&<>"]/g,c=>({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));}
function draw(){
  const c = document.getElementById('chart'), g = c.getContext('2d');
  g.clearRect(0,0,c.width,c.height);
  const names = Object.keys(history); let maxE = 1, maxP = 1;
  names.forEach(n=>history[n].forEach(p=>{maxE=Math.max(maxE,p.e*100);maxP=Math.max(maxP,p.p99);}));
  g.strokeStyle='#eee'; for(let i=1;i<4;i++){g.beginPath();g.moveTo(0,i*c.height/4);g.lineTo(c.width,i*c.height/4);g.stroke();}
  names.forEach((n,i)=>{
    const pts = history[n], col = colors[i%colors.length]; g.strokeStyle=col; g.fillStyle=col;
    [['e',maxE,[]],['p99',maxP,[6,4]]].forEach(([k,mx,dash])=>{
      g.setLineDash(dash); g.beginPath();
      pts.forEach((p,j)=>{const x=44+(c.width-96)*(j+301-pts.length)/300, v=k==='e'?p.e*100:p.p99, y=c.height-4-(c.height-8)*v/mx; j?g.lineTo(x,y):g.moveTo(x,y);});
      g.stroke();});
    g.setLineDash([]); g.fillText(n, 80+70*i, 14);
  });
  // Events as vertical lines, at the first point at or after them.
  const ref = names.length ? history[names[0]] : [], shown = [];
  marks.forEach(m=>{
    const j = ref.findIndex(p=>p.t >= m.t); if (j < 0 || !ref.length || m.t < ref[0].t - 1000) return;
    const x = 44+(c.width-96)*(j+301-ref.length)/300;
    g.strokeStyle = m.kind==='rollback'?'#c62828':'#999'; g.setLineDash([2,3]); g.beginPath(); g.moveTo(x,18); g.lineTo(x,c.height); g.stroke(); g.setLineDash([]);
    g.fillStyle='#555'; g.fillText(m.kind, x+2, 28+12*(shown.length%4));
    shown.push(m.kind + ' ' + new Date(m.t).toLocaleTimeString());
  });
  document.getElementById('marks').textContent = shown.length ? 'events on the chart: ' + shown.join(' · ') : '';
  g.fillStyle='#777'; g.textAlign='left'; g.fillText(maxE.toFixed(1)+' %', 4, 14); g.fillText('0 %', 4, c.height-6);
  g.textAlign='right'; g.fillText(maxP.toFixed(maxP<10?1:0)+' ms', c.width-4, 14); g.fillText('0 ms', c.width-4, c.height-6); g.textAlign='left';
}
async function tick(){
  try{
    if (!loaded) { loaded = true; await load_history().catch(()=>{}); }
    const s = await (await fetch('/status',{cache:'no-store'})).json();
    document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString() + ' · window ' + s.window_s + ' s';
    const st = document.getElementById('state'); st.textContent = s.state; st.className = 'big state-' + s.state;
    const steps = s.steps||[], live = s.state==='progressing'||s.state==='baking';
    document.getElementById('paused').textContent = (s.paused?'paused · ':'') + (live ? 'step ' + (s.step+1) + ' of ' + steps.length + ' · ' : '') +
      s.strategy + (steps.length ? ': ' + steps.join('% \u2192 ') + '%' : '');
    document.getElementById('weight').textContent = s.canary_weight + '%';
    document.getElementById('weightbar').style.width = s.canary_weight + '%';
    document.getElementById('roles').textContent = 'stable ' + s.stable + ' · canary ' + s.canary;
    const v = s.verdict || {}, off = !s.holding && !v.verdict && s.canary_weight === 0;
    document.getElementById('verdict').textContent = s.holding ? 'holding' : off ? 'off' : (v.verdict||'-');
    document.getElementById('verdict_reason').textContent = s.holding ? ('needs ' + s.needed_requests + ' more canary requests') : off ? 'the canary has no traffic' : (v.reason||'');
    const tb = document.querySelector('#pools tbody'); tb.innerHTML='';
    for (const [name,p] of Object.entries(s.pools)) {
      (history[name] = history[name] || []).push({t:Date.now(), e:p.error_rate, p99:p.p99_ms});
      if (history[name].length > 300) history[name].shift();
      const eps = p.endpoints.map(e=>esc(e.address)+(e.name?' ('+esc(e.name)+')':'')+' '+(e.drained?'drained':e.ejected?'<span class=bad>ejected</span>':e.healthy?'healthy':'<span class=bad>unhealthy</span>')).join('<br>');
      tb.insertAdjacentHTML('beforeend','<tr class="pool" data-pool="'+esc(name)+'"><td class=l>'+esc(name)+'</td><td class=l>'+esc(p.role)+'</td><td>'+p.requests+'</td><td>'+p.rps.toFixed(1)+'</td><td>'+(p.error_rate*100).toFixed(2)+'%</td><td>'+p.p50_ms.toFixed(1)+'</td><td>'+p.p95_ms.toFixed(1)+'</td><td>'+p.p99_ms.toFixed(1)+'</td><td class=l>'+eps+'</td></tr>');
    }
    const fl = s.cluster, fd = document.getElementById('fleet'); fd.hidden = !fl;
    if (fl) {
      document.getElementById('fleet_head').textContent = fl.name + ' · this instance ' + fl.instance + ' · leader ' + (fl.leader||'none') + ' · etcd ' + (fl.etcd_up ? 'up' : 'UNREACHABLE') + ' · pools above: the fleet\'s figures';
      const ib = document.querySelector('#instances tbody'); ib.innerHTML='';
      fl.instances.forEach(i=>ib.insertAdjacentHTML('beforeend','<tr class="instance"><td class=l>'+esc(i.instance)+'</td><td class=l>'+(i.leader?'leader':'')+'</td><td>'+(i.report_age_ms===null?'-':i.report_age_ms)+'</td><td class=l>'+Object.entries(i.pools).map(([n,p])=>esc(n)+' '+p.requests+' / '+p.failures).join(' · ')+'</td></tr>'));
    }
    (s.events||[]).forEach(mark);
    const ev = document.querySelector('#events tbody'); ev.innerHTML='';
    if (!(s.events||[]).length) ev.innerHTML = '<tr><td class="l muted" colspan=4>no events yet</td></tr>';
    (s.events||[]).slice().reverse().forEach(e=>ev.insertAdjacentHTML('beforeend','<tr><td class=l>'+esc(e.time)+'</td><td class=l>'+esc(e.kind)+'</td><td class=l>'+esc(e.by)+'</td><td class=l>'+esc(e.reason)+'</td></tr>'));
    draw();
  }catch(err){document.getElementById('updated').textContent='veer unreachable: '+err;}
}
tick(); setInterval(tick, 1000);
</script></body></html>
)HTML";
}

}  // namespace veer::admin
