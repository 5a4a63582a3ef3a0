// marketbot dashboard: draws the charts of a page from its JSON routes. No inline script, no
// eval: every chart is a <div data-chart="KIND" data-url="/api/..."> this file fills in.
(function () {
  "use strict";

  const fetched = new Map();

  function getJSON(url) {
    if (!fetched.has(url)) {
      fetched.set(url, fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) {
          if (!response.ok) {
            return response.json().then(function (body) {
              throw new Error(typeof body.detail === "string" ? body.detail : "the chart data could not be loaded");
            });
          }
          return response.json();
        }));
    }
    return fetched.get(url);
  }

  const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];

  function points(times, values) {
    const out = [];
    for (let i = 0; i < times.length; i++) {
      if (values[i] !== null && values[i] !== undefined) { out.push({time: times[i], value: values[i]}); }
    }
    return out;
  }

  function lwChart(el, intraday) {
    const LC = window.LightweightCharts;
    const chart = LC.createChart(el, {
      autoSize: true,
      // The logo brings its own <style> element, which the CSP refuses: every chart page
      // carries the attribution and the link to tradingview.com as text instead.
      layout: {background: {color: "#ffffff"}, textColor: "#334155", attributionLogo: false},
      grid: {vertLines: {color: "#f1f5f9"}, horzLines: {color: "#f1f5f9"}},
      // Small charts of long runs need bars narrower than the default half pixel to fit.
      timeScale: {timeVisible: Boolean(intraday), secondsVisible: false, minBarSpacing: 0.001},
      rightPriceScale: {borderVisible: false},
    });
    return chart;
  }

  function line(chart, color, width) {
    return chart.addSeries(window.LightweightCharts.LineSeries, {color: color, lineWidth: width || 2, priceLineVisible: false});
  }

  const drawers = {
    "backtest-equity": function (el, d) {
      const chart = lwChart(el, d.intraday);
      line(chart, COLORS[0], 2).setData(points(d.time, d.equity));
      line(chart, "#94a3b8", 1).setData(points(d.time, d.buy_hold));
      chart.timeScale().fitContent();
    },
    "backtest-drawdown": function (el, d) {
      const chart = lwChart(el, d.intraday);
      const series = chart.addSeries(window.LightweightCharts.AreaSeries, {
        lineColor: "#dc2626", topColor: "rgba(220,38,38,0.05)", bottomColor: "rgba(220,38,38,0.3)", priceLineVisible: false,
      });
      series.setData(points(d.time, d.drawdown));
      chart.timeScale().fitContent();
    },
    "backtest-price": function (el, d) {
      const LC = window.LightweightCharts;
      const chart = lwChart(el, d.intraday);
      let series;
      if (d.price && d.price.kind === "candles") {
        series = chart.addSeries(LC.CandlestickSeries, {upColor: "#16a34a", downColor: "#dc2626", borderVisible: false, wickUpColor: "#16a34a", wickDownColor: "#dc2626", priceLineVisible: false});
        const bars = [];
        for (let i = 0; i < d.time.length; i++) {
          if (d.price.close[i] !== null) {
            bars.push({time: d.time[i], open: d.price.open[i], high: d.price.high[i], low: d.price.low[i], close: d.price.close[i]});
          }
        }
        series.setData(bars);
      } else if (d.symbols) {
        // A portfolio: the first charted symbol's closes with its own trades.
        const first = d.symbols[0];
        series = line(chart, "#334155", 1);
        series.setData(points(d.time, first ? first.close : []));
        if (first) {
          const marks = first.marker_time.map(function (time, i) {
            const style = d.marker_styles[first.marker_style[i]];
            return {time: time, position: style.position, color: style.color, shape: style.shape};
          });
          LC.createSeriesMarkers(series, marks);
          const note = document.createElement("p");
          note.className = "muted";
          note.textContent = "Price of " + first.name + " with its trades (the first of " + d.symbols.length + " charted symbols; the HTML report shows each).";
          el.after(note);
        }
      } else {
        series = line(chart, "#334155", 1);
        series.setData(points(d.time, (d.price || {close: []}).close));
      }
      if (d.markers && d.markers.length) { LC.createSeriesMarkers(series, d.markers); }
      el.dataset.candles = d.price ? d.price.kind : (d.symbols ? "portfolio" : "none");
      chart.timeScale().fitContent();
    },
    "compare-overlay": function (el, d) {
      const chart = lwChart(el, d.intraday);
      d.series.forEach(function (s, i) { line(chart, COLORS[i % COLORS.length], 2).setData(points(s.time, s.equity)); });
      chart.timeScale().fitContent();
      const legend = document.createElement("p");
      legend.className = "legend";
      d.series.forEach(function (s, i) {
        const item = document.createElement("span");
        item.className = "legend-item legend-" + (i % COLORS.length);
        item.textContent = s.label;
        legend.append(item);
      });
      el.after(legend);
    },
    "compare-multiples": function (el, d) {
      el.replaceChildren();
      const charts = [];
      d.series.forEach(function (s, i) {
        const box = document.createElement("div");
        box.className = "multiple";
        const title = document.createElement("h3");
        title.textContent = s.label;
        const area = document.createElement("div");
        area.className = "chart small";
        box.append(title, area);
        el.append(box);
        const chart = lwChart(area, d.intraday);
        chart.priceScale("right").applyOptions({autoScale: false});
        const series = line(chart, COLORS[i % COLORS.length], 2);
        series.applyOptions({autoscaleInfoProvider: function () { return {priceRange: {minValue: d.min, maxValue: d.max}}; }});
        series.setData(points(s.time, s.equity));
        chart.timeScale().fitContent();
        charts.push(chart);
      });
      // Fit once every chart has its width (autoSize measures after layout).
      window.requestAnimationFrame(function () {
        charts.forEach(function (chart) { chart.timeScale().fitContent(); });
      });
      // One shared time axis: scrolling one small multiple scrolls them all.
      charts.forEach(function (chart) {
        chart.timeScale().subscribeVisibleLogicalRangeChange(function (range) {
          if (!range) { return; }
          charts.forEach(function (other) { if (other !== chart) { other.timeScale().setVisibleLogicalRange(range); } });
        });
      });
    },
    "opt-heatmap": function (el, d) {
      if (!d.cells || !d.cells.length) { el.textContent = "No two-parameter grid to show."; return; }
      const canvas = document.createElement("canvas");
      el.replaceChildren(canvas);
      const values = d.cells.map(function (c) { return c.v; }).filter(function (v) { return v !== null; });
      const low = Math.min.apply(null, values), high = Math.max.apply(null, values);
      new window.Chart(canvas, {
        type: "matrix",
        data: {datasets: [{
          label: d.metric,
          data: d.cells,
          backgroundColor: function (ctx) {
            const v = ctx.dataset.data[ctx.dataIndex].v;
            if (v === null || high === low) { return "rgba(148,163,184,0.5)"; }
            const t = (v - low) / (high - low);
            return "rgba(" + Math.round(220 - 200 * t) + "," + Math.round(38 + 125 * t) + "," + Math.round(38 + 36 * t) + ",0.85)";
          },
          width: function (ctx) { const a = ctx.chart.chartArea; return a ? a.width / d.xs.length - 2 : 10; },
          height: function (ctx) { const a = ctx.chart.chartArea; return a ? a.height / d.ys.length - 2 : 10; },
        }]},
        options: {
          animation: false, maintainAspectRatio: false,
          plugins: {legend: {display: false}, tooltip: {callbacks: {label: function (ctx) { const c = ctx.raw; return d.x + "=" + c.x + ", " + d.y + "=" + c.y + ": " + c.v; }}}},
          scales: {
            x: {type: "category", labels: d.xs.map(String), title: {display: true, text: d.x}, grid: {display: false}},
            y: {type: "category", labels: d.ys.map(String), offset: true, title: {display: true, text: d.y}, grid: {display: false}},
          },
        },
      });
    },
    "opt-sensitivity": function (el, d) {
      if (!d.parameters || !d.parameters.length) { el.textContent = "No sensitivity data."; return; }
      const canvas = document.createElement("canvas");
      el.replaceChildren(canvas);
      new window.Chart(canvas, {
        type: "bar",
        data: {labels: d.parameters.map(function (p) { return p.name; }),
               datasets: [{label: "spread of " + d.metric + " across the parameter's values", data: d.parameters.map(function (p) { return p.spread; }), backgroundColor: "#2563eb"}]},
        options: {animation: false, maintainAspectRatio: false},
      });
    },
    "opt-walkforward": function (el, d) {
      if (!d.time || !d.time.length) { el.textContent = "No walk-forward run stored."; return; }
      const chart = lwChart(el, d.intraday);
      line(chart, COLORS[0], 2).setData(points(d.time, d.equity));
      chart.timeScale().fitContent();
    },
    "bot-equity": function (el, d) {
      if (!d.time || !d.time.length) { el.textContent = "No closed trades yet."; return; }
      const chart = lwChart(el, true);
      line(chart, COLORS[0], 2).setData(points(d.time, d.equity));
      chart.timeScale().fitContent();
    },
  };

  function draw(root) {
    root.querySelectorAll("[data-chart]:not([data-drawn])").forEach(function (el) {
      el.dataset.drawn = "pending";
      const drawer = drawers[el.dataset.chart];
      if (!drawer) { return; }
      getJSON(el.dataset.url).then(function (data) {
        drawer(el, data);
        el.dataset.drawn = "yes";
      }).catch(function (error) {
        el.dataset.drawn = "failed";
        el.textContent = error.message;
        el.classList.add("error");
      });
    });
  }

  // The alert form: the metric list and the subject field follow the chosen kind.
  function followKind(form) {
    const kind = form.querySelector("[data-alert-kind]").value;
    const metric = form.querySelector("[data-alert-metric]");
    metric.querySelectorAll("optgroup").forEach(function (group) {
      const on = group.dataset.kind === kind;
      group.hidden = !on;
      group.disabled = !on;
    });
    const chosen = metric.selectedOptions[0];
    if (!chosen || chosen.parentElement.dataset.kind !== kind) {
      const first = metric.querySelector("optgroup[data-kind='" + kind + "'] option");
      if (first) { metric.value = first.value; }
    }
    const subject = form.querySelector("[data-alert-subject]");
    subject.hidden = kind === "portfolio";
    subject.querySelector("input").disabled = kind === "portfolio";
  }

  function setUpForms(root) {
    root.querySelectorAll("form[data-alert-form]").forEach(function (form) {
      form.querySelector("[data-alert-kind]").addEventListener("change", function () { followKind(form); });
      followKind(form);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { draw(document); setUpForms(document); });
  document.addEventListener("htmx:load", function (event) { draw(event.detail.elt); });
})();
