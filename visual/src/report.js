// Zoom, pan and scale switch for the xskdbg timelines. Every positioned
// element carries its x on both scales (data-x: time, data-o: event order;
// spans also data-x2/data-o2); the view is base x -> L + (x - L - off) * k.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  function num(el, k) { return parseFloat(el.getAttribute(k)); }
  function nice(raw) {
    if (!(raw > 0)) return 1;
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * mag >= raw) return steps[i] * mag;
    return 10 * mag;
  }
  function fmtNs(t, step) {
    if (step >= 1e6) return "+" + (t / 1e6).toFixed(step >= 1e7 ? 0 : 1) + " ms";
    if (step >= 1e3) return "+" + (t / 1e3).toFixed(step >= 1e4 ? 0 : 1) + " µs";
    return "+" + Math.round(t) + " ns";
  }
  function Fig(svg) {
    this.svg = svg;
    this.L = num(svg, "data-l"); this.PW = num(svg, "data-pw"); this.pad = num(svg, "data-pad");
    this.n = num(svg, "data-n"); this.span = num(svg, "data-span");
    this.timeOk = svg.getAttribute("data-timeok") === "1";
    this.lines = (svg.getAttribute("data-lines") || "").split(",");
    this.mode = svg.getAttribute("data-mode") || "x";
    this.k = 1; this.off = 0;
    this.height = svg.viewBox.baseVal.height;
    this.pts = svg.querySelectorAll(".plot [data-x]");
    this.axis = svg.querySelector("g.axis");
  }
  Fig.prototype.X = function (v) { return this.L + (v - this.L - this.off) * this.k; };
  Fig.prototype.clamp = function () {
    this.k = Math.min(Math.max(this.k, 1), 5000);
    this.off = Math.min(Math.max(this.off, 0), this.PW - this.PW / this.k);
  };
  Fig.prototype.place = function () {
    var m = this.mode, m2 = m + "2", self = this;
    var groups = {};
    Array.prototype.forEach.call(this.pts, function (el) {
      var a = self.X(parseFloat(el.dataset[m]));
      if (el.tagName.toLowerCase() === "rect") {
        var b = self.X(parseFloat(el.dataset[m2]));
        el.setAttribute("x", a.toFixed(1));
        el.setAttribute("width", Math.max(0, b - a).toFixed(1));
        return;
      }
      el.setAttribute("transform", "translate(" + a.toFixed(1) + ",0)");
      el.__x = a;
      if (el.classList.contains("moment")) {
        // Near the right edge the tag goes to the left of the line.
        var tag = el.querySelector("text.mtag");
        if (tag) {
          var right = a > self.L + self.PW - 260;
          tag.setAttribute("x", right ? "-4" : "4");
          tag.style.textAnchor = right ? "end" : "start";
        }
      }
      if (el.classList.contains("sl")) {
        var w = self.X(parseFloat(el.dataset[m2])) - a;
        el.style.visibility = w >= parseFloat(el.dataset.w) + 6 ? "visible" : "hidden";
      }
      var t = el.querySelector("text.lbl");
      if (t) { (groups[t.dataset.r] = groups[t.dataset.r] || []).push([a, parseFloat(t.dataset.w), t, el]); }
    });
    // Hide labels that would overlap their neighbour in the same row;
    // the finding's own events are labelled first.
    var lo = this.L, hi = this.L + this.PW;
    Object.keys(groups).forEach(function (r) {
      var g = groups[r], kept = [];
      g.sort(function (p, q) {
        var hp = p[3].classList.contains("hl") ? 0 : 1, hq = q[3].classList.contains("hl") ? 0 : 1;
        return hp - hq || p[0] - q[0];
      });
      g.forEach(function (p) {
        // Keep labels of marks near the ends inside the plot.
        var c = Math.min(Math.max(p[0], lo + p[1] / 2 + 2), hi - p[1] / 2 - 2);
        p[2].setAttribute("x", (c - p[0]).toFixed(1));
        var l = c - p[1] / 2 - 2, rr = c + p[1] / 2 + 2;
        var ok = p[0] >= lo && p[0] <= hi && kept.every(function (q) { return rr <= q[0] || l >= q[1]; });
        p[2].style.visibility = ok ? "visible" : "hidden";
        if (ok) kept.push([l, rr]);
      });
    });
    this.drawAxis();
  };
  Fig.prototype.drawAxis = function () {
    var ax = this.axis; if (!ax) return;
    while (ax.firstChild) ax.removeChild(ax.firstChild);
    var inner = this.PW - 2 * this.pad;
    var xa = this.L + this.off, xb = this.L + this.off + this.PW / this.k;
    var self = this, ticks = [];
    if (this.mode === "x" && this.timeOk && this.span > 0) {
      var ta = (xa - this.L - this.pad) / inner * this.span, tb = (xb - this.L - this.pad) / inner * this.span;
      var step = nice((tb - ta) / 8);
      for (var t = Math.ceil(Math.max(ta, 0) / step) * step; t <= tb && ticks.length < 40; t += step) {
        ticks.push([this.L + this.pad + t / this.span * inner, fmtNs(t, step)]);
      }
    } else if (this.n > 1) {
      var ia = (xa - this.L - this.pad) / inner * (this.n - 1), ib = (xb - this.L - this.pad) / inner * (this.n - 1);
      var st = Math.max(1, nice((ib - ia) / 8));
      for (var i = Math.ceil(Math.max(ia, 0) / st) * st; i <= Math.min(ib, this.n - 1) && ticks.length < 40; i += st) {
        ticks.push([this.L + this.pad + i / (this.n - 1) * inner, "line " + this.lines[Math.round(i)]]);
      }
    }
    ticks.forEach(function (tk) {
      var x = self.X(tk[0]);
      if (x < self.L - 0.5 || x > self.L + self.PW + 0.5) return;
      var ln = document.createElementNS(NS, "line");
      ln.setAttribute("x1", x.toFixed(1)); ln.setAttribute("x2", x.toFixed(1));
      ln.setAttribute("y1", "22"); ln.setAttribute("y2", String(self.height - 4));
      ax.appendChild(ln);
      var tx = document.createElementNS(NS, "text");
      tx.setAttribute("x", (x + 3).toFixed(1)); tx.setAttribute("y", "16");
      tx.textContent = tk[1];
      ax.appendChild(tx);
    });
  };
  Fig.prototype.svgX = function (ev) {
    var p = this.svg.createSVGPoint(); p.x = ev.clientX; p.y = ev.clientY;
    var m = this.svg.getScreenCTM();
    return m ? p.matrixTransform(m.inverse()).x : this.L;
  };
  Fig.prototype.zoomAt = function (sx, f) {
    var base = this.L + this.off + (sx - this.L) / this.k;
    this.k *= f; this.clamp();
    this.off = base - this.L - (sx - this.L) / this.k; this.clamp();
    this.place();
  };
  function init(div) {
    var svg = div.querySelector("svg.timeline"); if (!svg) return;
    var f = new Fig(svg), drag = null;
    div.querySelectorAll(".tools button").forEach(function (b) {
      b.addEventListener("click", function () {
        var act = b.dataset.act, mid = f.L + f.PW / 2;
        if (act === "in") f.zoomAt(mid, 2);
        else if (act === "out") f.zoomAt(mid, 0.5);
        else if (act === "reset") { f.k = 1; f.off = 0; f.place(); }
        else if (act === "mode") {
          if (!f.timeOk) return;
          f.mode = f.mode === "x" ? "o" : "x"; f.k = 1; f.off = 0;
          b.textContent = f.mode === "x" ? "scale: time" : "scale: order";
          f.place();
        }
      });
    });
    svg.addEventListener("wheel", function (ev) {
      if (ev.ctrlKey || ev.metaKey) {
        ev.preventDefault();
        f.zoomAt(f.svgX(ev), ev.deltaY < 0 ? 1.25 : 0.8);
      } else if (f.k > 1 && (ev.shiftKey || Math.abs(ev.deltaX) > Math.abs(ev.deltaY))) {
        // Horizontal scrolling pans a zoomed timeline; vertical scrolls the page.
        ev.preventDefault();
        var d = Math.abs(ev.deltaX) > Math.abs(ev.deltaY) ? ev.deltaX : ev.deltaY;
        f.off += d / f.k; f.clamp(); f.place();
      }
    }, { passive: false });
    svg.addEventListener("mousedown", function (ev) { drag = { x: f.svgX(ev), off: f.off, moved: false }; svg.classList.add("drag"); });
    window.addEventListener("mousemove", function (ev) {
      if (!drag) return;
      var dx = f.svgX(ev) - drag.x;
      if (Math.abs(dx) > 2) drag.moved = true;
      f.off = drag.off - dx / f.k; f.clamp(); f.place();
    });
    window.addEventListener("mouseup", function () { if (drag) { svg.classList.remove("drag"); setTimeout(function () { drag = null; }, 0); } });
    svg.addEventListener("dblclick", function () { f.k = 1; f.off = 0; f.place(); });
    svg.addEventListener("click", function (ev) {
      if (drag && drag.moved) return;
      var g = ev.target.closest ? ev.target.closest(".pt[data-line]") : null;
      if (!g) return;
      var id = div.id.replace("fig-", "f") + "-l" + g.getAttribute("data-line");
      div.parentNode.querySelectorAll("tr.sel, .pt.sel").forEach(function (e) { e.classList.remove("sel"); });
      g.classList.add("sel");
      var row = document.getElementById(id);
      if (row) { row.classList.add("sel"); var d = row.closest("details"); if (d) d.open = true; }
    });
    f.place();
  }
  var figs = document.querySelectorAll("div.fig");
  figs.forEach(init);
  document.body.setAttribute("data-ready", String(figs.length));
})();
