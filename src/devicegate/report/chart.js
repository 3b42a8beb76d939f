// report.html charts: SVG drawn from the embedded JSON; no network, no library.
(function(){
"use strict";
var NS="http://www.w3.org/2000/svg";
var data=JSON.parse(document.getElementById("audit-data").textContent);
var COLORS={violations:"#c62828",warned:"#f9a825",excepted:"#6a1b9a",events:"#90a4ae"};
function el(name,attrs,parent){var e=document.createElementNS(NS,name);
  for(var k in attrs){e.setAttribute(k,attrs[k]);} if(parent){parent.appendChild(e);} return e;}
function text(parent,x,y,s,anchor){var t=el("text",{x:x,y:y,"text-anchor":anchor||"start"},parent);
  t.textContent=s; return t;}
function legend(svg,keys,x,y){keys.forEach(function(k,i){
  el("rect",{x:x+i*110,y:y-9,width:10,height:10,fill:COLORS[k]},svg); text(svg,x+i*110+14,y,k);});}
function mark(box,svg){box.appendChild(svg); box.setAttribute("data-drawn","yes");}
function units(){
  var box=document.getElementById("chart-units"), rows=data.units, W=1000, row=22, left=300;
  var H=rows.length*row+40, svg=el("svg",{viewBox:"0 0 "+W+" "+H,width:"100%"});
  var max=Math.max(1,Math.max.apply(null,rows.map(function(r){return r.violations+r.warned+r.excepted;})));
  rows.forEach(function(r,i){var y=10+i*row, x=left;
    text(svg,left-8,y+12,r.unit+(r.deadline?" (from "+r.deadline+")":""),"end");
    ["violations","warned","excepted"].forEach(function(k){
      var w=(W-left-80)*r[k]/max; if(w>0){el("rect",{x:x,y:y,width:w,height:row-6,fill:COLORS[k],
        "class":"bar"},svg).appendChild(document.createElementNS(NS,"title")).textContent=r.unit+": "+r[k]+" "+k; x+=w;}});
    text(svg,x+6,y+12,String(r.violations));});
  legend(svg,["violations","warned","excepted"],left,H-8); mark(box,svg);}
function trend(){
  var box=document.getElementById("chart-trend"), rows=data.trend, W=1000, H=260, L=50, B=30, T=10;
  var svg=el("svg",{viewBox:"0 0 "+W+" "+H,width:"100%"});
  if(!rows.length){text(svg,L,40,"no events"); mark(box,svg); return;}
  var max=Math.max(1,Math.max.apply(null,rows.map(function(r){return Math.max(r.violations,r.warned,r.excepted);})));
  var step=(W-L-10)/Math.max(1,rows.length-1);
  function X(i){return L+i*step;} function Y(v){return T+(H-T-B)*(1-v/max);}
  el("line",{x1:L,y1:Y(0),x2:W-10,y2:Y(0),stroke:"#99a"},svg);
  text(svg,L-6,Y(max)+4,String(max),"end"); text(svg,L-6,Y(0)+4,"0","end");
  data.deadlines.forEach(function(d){var i=rows.findIndex(function(r){return r.day>=d;});
    if(i>=0){el("line",{x1:X(i),y1:T,x2:X(i),y2:Y(0),stroke:"#1d2433","stroke-dasharray":"4 3",
      "class":"deadline"},svg); text(svg,X(i)+4,T+10,"deadline "+d);}});
  ["violations","warned","excepted"].forEach(function(k){
    var pts=rows.map(function(r,i){return X(i).toFixed(1)+","+Y(r[k]).toFixed(1);}).join(" ");
    el("polyline",{points:pts,fill:"none",stroke:COLORS[k],"stroke-width":2,"class":"series"},svg);});
  rows.forEach(function(r,i){if(i%Math.ceil(rows.length/10)===0){text(svg,X(i),H-B+16,r.day.slice(5),"middle");}});
  legend(svg,["violations","warned","excepted"],L+10,H-2); mark(box,svg);}
function reportOnly(){
  var box=document.getElementById("chart-report-only"), rows=data.report_only, W=1000, row=22, left=330;
  var H=Math.max(1,rows.length)*row+20, svg=el("svg",{viewBox:"0 0 "+W+" "+H,width:"100%"});
  if(!rows.length){text(svg,10,16,"no report-only rule matched");}
  var max=Math.max(1,Math.max.apply(null,rows.map(function(r){return r.events;})));
  rows.forEach(function(r,i){var y=6+i*row;
    text(svg,left-8,y+12,r.label,"end");
    el("rect",{x:left,y:y,width:(W-left-80)*r.events/max,height:row-6,fill:"#5c6bc0","class":"bar"},svg);
    text(svg,left+(W-left-80)*r.events/max+6,y+12,String(r.events));});
  mark(box,svg);}
units(); trend(); reportOnly();
})();
