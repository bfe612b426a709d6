// The dashboard's charts (Chart.js) from the figures the page carries, and a table sortable by its headers.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  var palette = ["#0d6efd", "#fd7e14", "#198754", "#d63384", "#6f42c1", "#20c997", "#dc3545", "#6c757d", "#ffc107", "#0dcaf0"];
  if (window.Chart) {
    new Chart(document.getElementById("weekly"), {
      type: "bar",
      data: {
        labels: data.weeks,
        datasets: data.datasets.map(function (d, i) {
          return { label: d.label, data: d.data, backgroundColor: palette[i % palette.length] };
        }),
      },
      options: { responsive: true, maintainAspectRatio: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
    });
    new Chart(document.getElementById("trend"), {
      type: "line",
      data: { labels: data.weeks, datasets: [{ label: data.trend_label, data: data.trend, borderColor: "#198754", spanGaps: true }] },
      options: { responsive: true, maintainAspectRatio: false, scales: { y: { beginAtZero: true } } },
    });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("th").forEach(function (th, column) {
      th.addEventListener("click", function () {
        var body = table.tBodies[0];
        var down = th.dataset.order !== "desc";
        th.dataset.order = down ? "desc" : "asc";
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[column], y = b.cells[column];
          if (th.dataset.kind === "num") {
            var vx = parseFloat(x.dataset.value || x.textContent), vy = parseFloat(y.dataset.value || y.textContent);
            return down ? vy - vx : vx - vy;
          }
          return down ? y.textContent.localeCompare(x.textContent) : x.textContent.localeCompare(y.textContent);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();
