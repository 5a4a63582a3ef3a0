// Price and time axes of the reports' Lightweight Charts (inlined by marketbot.backtest.report
// and marketbot.optimize.report): round log-scale ticks, whole labels, room at the edges.
const ReportAxes = (function (LC) {
  "use strict";
  const EDGE_ROOM = 24;  // pixels left free before the first and after the last bar
  const TICK_GAP = 22;  // fewest pixels between two log-scale tick labels
  const TICK_MANTISSAS = [[1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 5], [1]];

  // Axis numbers without trailing zeros, so round ticks read 1M, 2.5M, 2,000, 0.005.
  function axis(v) {
    const size = Math.abs(v);
    if (size >= 1e9) { return (v / 1e9).toLocaleString("en-US", {maximumFractionDigits: 2}) + "B"; }
    if (size >= 1e6) { return (v / 1e6).toLocaleString("en-US", {maximumFractionDigits: 2}) + "M"; }
    if (size >= 1 || size === 0) { return v.toLocaleString("en-US", {maximumFractionDigits: size >= 1e4 ? 0 : 2}); }
    return v.toLocaleString("en-US", {maximumSignificantDigits: 4});
  }
  function isRound(v) { return v !== 0 && Math.abs(Number(v.toPrecision(2)) - v) <= Math.abs(v) * 1e-9; }

  function decimal(mantissa, power) { return Number((mantissa * Math.pow(10, power)).toPrecision(12)); }
  function spaced(ticks, y) {
    const at = ticks.map(y).sort(function (a, b) { return a - b; });
    for (let i = 1; i < at.length; i++) { if (at[i] - at[i - 1] < TICK_GAP) { return false; } }
    return true;
  }
  // Round ticks for a log axis from low to high: the densest of 1-9, 1-2-5 or 1 × 10^k (then
  // every 2nd, 3rd... power of ten) whose labels stay TICK_GAP apart; a range narrower than
  // that gets evenly stepped round ticks (1, 2 or 5 × 10^k apart).
  function logTicks(low, high, y, height) {
    const inView = function (p) { const c = y(p); return c !== null && c >= 8 && c <= height - 8; };
    const first = Math.floor(Math.log10(low)), last = Math.ceil(Math.log10(high));
    for (let stride = 1; stride <= 12; stride++) {
      const sets = stride === 1 ? TICK_MANTISSAS : [[1]];
      for (let s = 0; s < sets.length; s++) {
        const ticks = [];
        for (let k = first; k <= last; k++) {
          if (((k % stride) + stride) % stride !== 0) { continue; }
          sets[s].forEach(function (m) { const p = decimal(m, k); if (p >= low && p <= high && inView(p)) { ticks.push(p); } });
        }
        if (ticks.length >= 2 && spaced(ticks, y)) { return ticks; }
      }
    }
    const raw = (high - low) / Math.max(2, Math.floor(height / 60));
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map(function (f) { return f * power; }).find(function (size) { return size >= raw; });
    const ticks = [];
    for (let p = Math.ceil(low / step) * step; p <= high; p += step) { const q = Number(p.toPrecision(12)); if (inView(q)) { ticks.push(q); } }
    return ticks;
  }

  // Lightweight Charts spaces log-scale ticks evenly in the logarithm (2,800, 6,000, 13,000).
  // In log mode its own labels and horizontal grid are hidden and round ticks are drawn as
  // price lines of `series`, recomputed after each zoom, pan or resize. Returns {set(on)}.
  function logScale(chart, series, gridColor, textColor) {
    let log = false, lines = [], drawn = "", waiting = false;
    function clear() { lines.forEach(function (line) { series.removePriceLine(line); }); lines = []; drawn = ""; }
    function draw() {
      waiting = false;
      if (!log) { return; }
      const height = chart.paneSize().height;
      const high = series.coordinateToPrice(0), low = series.coordinateToPrice(height);
      if (high === null || low === null || !(low > 0) || !(high > low)) { return; }
      const ticks = logTicks(low, high, function (p) { return series.priceToCoordinate(p); }, height);
      if (ticks.join(" ") === drawn) { return; }
      clear();
      drawn = ticks.join(" ");
      ticks.forEach(function (p) {
        lines.push(series.createPriceLine({price: p, color: gridColor, lineWidth: 1, lineStyle: LC.LineStyle.Solid,
          axisLabelVisible: true, axisLabelColor: "#ffffff", axisLabelTextColor: textColor, title: ""}));
      });
    }
    // Two frames: the chart rescales on its next paint, and the ticks need the new scale.
    function later() { if (!waiting) { waiting = true; requestAnimationFrame(function () { requestAnimationFrame(draw); }); } }
    chart.timeScale().subscribeVisibleLogicalRangeChange(later);
    const element = chart.chartElement();
    element.addEventListener("wheel", later, {passive: true});
    element.addEventListener("mouseup", later);
    if (window.ResizeObserver) { new ResizeObserver(later).observe(element); }
    return {
      set: function (on) {
        log = on;
        chart.applyOptions({grid: {horzLines: {visible: !on}}});
        chart.priceScale("right").applyOptions({
          mode: on ? LC.PriceScaleMode.Logarithmic : LC.PriceScaleMode.Normal,
          textColor: on ? "rgba(0,0,0,0)" : textColor
        });
        if (!on) { clear(); }
        later();
      }
    };
  }

  // Every one of `count` bars in view, with room either side: a time label on the first or
  // last bar would otherwise be cut at the chart's edge.
  function fitWithRoom(charts, count) {
    // Before the first paint the time scale may not know its width yet.
    const plot = charts[0].timeScale().width() || charts[0].chartElement().clientWidth - 96;
    if (count < 2 || plot <= 4 * EDGE_ROOM) {
      charts.forEach(function (chart) { chart.timeScale().fitContent(); });
      return;
    }
    const room = (count - 1) * EDGE_ROOM / (plot - 2 * EDGE_ROOM);
    charts.forEach(function (chart) { chart.timeScale().setVisibleLogicalRange({from: -room, to: count - 1 + room}); });
  }

  // The price scale every report chart uses: entireTextOnly drops a tick label that would be
  // cut in half at the top or bottom edge.
  function priceScale(margins) {
    return {borderVisible: false, minimumWidth: 96, entireTextOnly: true, scaleMargins: margins};
  }

  return {axis: axis, isRound: isRound, logScale: logScale, fitWithRoom: fitWithRoom, priceScale: priceScale};
})(window.LightweightCharts);
