/* citygrid compact feature layer for Leaflet.
 * Data: coordinates as integer micro-degrees, attributes as per-column dictionaries
 * (values + indices), drawn on one canvas; popups are built on click, text escaped. */
(function () {
  "use strict";
  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  function cell(table, col, i) {
    var c = table.values[col];
    var k = c.idx[i];
    return k < 0 ? null : c.dict[k];
  }
  // a point's symbol, centred on x, y, of "radius" r (the square, triangle and diamond fill about as much)
  function mark(ctx, shape, x, y, r) {
    ctx.beginPath();
    if (shape === "square") {
      ctx.rect(x - 0.9 * r, y - 0.9 * r, 1.8 * r, 1.8 * r);
    } else if (shape === "triangle") {
      ctx.moveTo(x, y - 1.2 * r); ctx.lineTo(x + 1.1 * r, y + 0.8 * r); ctx.lineTo(x - 1.1 * r, y + 0.8 * r);
      ctx.closePath();
    } else if (shape === "diamond") {
      ctx.moveTo(x, y - 1.25 * r); ctx.lineTo(x + 1.05 * r, y); ctx.lineTo(x, y + 1.25 * r);
      ctx.lineTo(x - 1.05 * r, y); ctx.closePath();
    } else {
      ctx.arc(x, y, r, 0, 2 * Math.PI);
    }
    ctx.fill();
  }
  var SYMBOLS = {circle: "&#9679;", square: "&#9632;", triangle: "&#9650;", diamond: "&#9670;"};
  // the radius of a point at a zoom level: it grows with the zoom, from 2 px over a district to 8 px on a street
  function radiusAt(zoom) {
    return Math.max(2, Math.min(8, 0.9 * (zoom - 10)));
  }
  function popupHtml(data, i) {
    var t = data.table, rows = [];
    for (var j = 0; j < t.columns.length; j++) {
      var v = cell(t, t.columns[j], i);
      if (v !== null && v !== "") {
        rows.push("<tr><th>" + esc(t.labels[j]) + "</th><td>" + esc(v) + "</td></tr>");
      }
    }
    return "<table class='cg-popup'>" + rows.join("") + "</table>";
  }
  // Context of a map without tiles: outlines, roads and the grid, under the features.
  var CONTEXT = {
    district: {color: "#222", weight: 3, minZoom: 0},
    street: {color: "#555", weight: 2, dashArray: "8 4", minZoom: 0},
    community: {color: "#888", weight: 1, dashArray: "3 3", minZoom: 12},
    road: {color: "#d8b98a", weight: 3, minZoom: 13},
    grid: {color: "#b0b0b0", weight: 0.6, minZoom: 15}
  };
  var LABELS = {street: [0, 14], community: [13, 16], road: [16, 30], district: [0, 0]};
  function addContext(map, context) {
    if (!context) { return; }
    map.createPane("cg-context").style.zIndex = 350;
    map.createPane("cg-labels").style.zIndex = 450;
    var renderer = L.canvas({pane: "cg-context", padding: 0.2}), byZoom = [];
    Object.keys(context.lines).forEach(function (kind) {
      var style = CONTEXT[kind] || CONTEXT.grid;
      var rings = context.lines[kind].map(function (flat) {
        var pts = [];
        for (var q = 0; q < flat.length; q += 2) { pts.push([flat[q + 1] / 1e6, flat[q] / 1e6]); }
        return pts;
      });
      var line = L.polyline(rings, {renderer: renderer, interactive: false, color: style.color,
        weight: style.weight, dashArray: style.dashArray, opacity: 0.9});
      byZoom.push({layer: line, min: style.minZoom, max: 99});
    });
    var labels = {};
    context.labels.forEach(function (l) {
      var group = labels[l[0]] || (labels[l[0]] = L.layerGroup());
      L.marker([l[3], l[2]], {pane: "cg-labels", interactive: false, keyboard: false,
        icon: L.divIcon({className: "cg-label cg-label-" + l[0], html: esc(l[1]), iconSize: null})}).addTo(group);
    });
    Object.keys(labels).forEach(function (kind) {
      var range = LABELS[kind] || [0, 30];
      byZoom.push({layer: labels[kind], min: range[0], max: range[1]});
    });
    function show() {
      var z = map.getZoom();
      byZoom.forEach(function (e) {
        var on = z >= e.min && z <= e.max;
        if (on && !map.hasLayer(e.layer)) { e.layer.addTo(map); }
        if (!on && map.hasLayer(e.layer)) { map.removeLayer(e.layer); }
      });
    }
    map.on("zoomend", show);
    show();
  }
  var CompactLayer = L.Layer.extend({
    initialize: function (data, options) {
      this.data = data;
      this.scale = (options && options.radius) || 1;
      this.visible = data.groups.map(function () { return true; });
      var n = data.points.lon.length;
      this.n = n;
      this.shapes = [];
      this.drawn = 0;
    },
    onAdd: function (map) {
      this._map = map;
      this._canvas = L.DomUtil.create("canvas", "cg-canvas");
      this._canvas.style.position = "absolute";
      this._canvas.style.pointerEvents = "none";
      map.getPanes().overlayPane.appendChild(this._canvas);
      var renderer = L.canvas({padding: 0.2});
      var d = this.data, self = this;
      this._shapeGroup = L.layerGroup().addTo(map);
      d.shapes.forEach(function (s, k) {
        var rings = s.c.map(function (flat) {
          var pts = [];
          for (var q = 0; q < flat.length; q += 2) { pts.push([flat[q + 1] / 1e6, flat[q] / 1e6]); }
          return pts;
        });
        var style = {renderer: renderer, color: d.groups[s.g].color, weight: 2 * self.scale, fillOpacity: 0.35};
        var layer = s.t === "polygon" ? L.polygon(rings, style) : L.polyline(rings, style);
        layer.on("click", function (e) { self.openPopup(self.n + k, e.latlng); });
        layer.cgGroup = s.g;
        self.shapes.push(layer);
        self._shapeGroup.addLayer(layer);
      });
      map.on("moveend zoomend resize viewreset", this.redraw, this);
      map.on("click", this._click, this);
      this.redraw();
    },
    onRemove: function (map) {
      map.off("moveend zoomend resize viewreset", this.redraw, this);
      map.off("click", this._click, this);
      L.DomUtil.remove(this._canvas);
      map.removeLayer(this._shapeGroup);
    },
    setGroupVisible: function (g, on) {
      if (this.visible[g] === on) { return; }
      this.visible[g] = on;
      var group = this._shapeGroup;
      this.shapes.forEach(function (s) {
        if (s.cgGroup === g) { if (on) { group.addLayer(s); } else { group.removeLayer(s); } }
      });
      this.redraw();
    },
    _pixel: function (i) {
      var p = this._map.latLngToContainerPoint([this.data.points.lat[i] / 1e6, this.data.points.lon[i] / 1e6]);
      return p;
    },
    redraw: function () {
      var map = this._map, size = map.getSize(), canvas = this._canvas;
      var ratio = window.devicePixelRatio || 1;
      L.DomUtil.setPosition(canvas, map.containerPointToLayerPoint([0, 0]));
      canvas.width = size.x * ratio; canvas.height = size.y * ratio;
      canvas.style.width = size.x + "px"; canvas.style.height = size.y + "px";
      var ctx = canvas.getContext("2d");
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, size.x, size.y);
      var d = this.data, pts = d.points, zoom = map.getZoom();
      var r = radiusAt(zoom) * this.scale, outline = zoom >= 16;
      var scale = 256 * Math.pow(2, zoom) / (2 * Math.PI);
      var origin = map.getPixelOrigin(), pane = map._getMapPanePos();
      var ox = origin.x - pane.x, oy = origin.y - pane.y;
      var drawn = 0, colors = d.groups.map(function (g) { return g.color; });
      var shapes = d.groups.map(function (g) { return g.shape || "circle"; });
      ctx.strokeStyle = "rgba(255,255,255,0.8)"; ctx.lineWidth = 1;
      this._xy = new Float32Array(this.n * 2);
      for (var i = 0; i < this.n; i++) {
        var g = pts.group[i];
        var lon = pts.lon[i] / 1e6 * Math.PI / 180, lat = pts.lat[i] / 1e6 * Math.PI / 180;
        var x = scale * (lon + Math.PI) - ox;
        var y = scale * (Math.PI - Math.log(Math.tan(Math.PI / 4 + lat / 2))) - oy;
        this._xy[2 * i] = x; this._xy[2 * i + 1] = y;
        if (!this.visible[g] || x < -r || y < -r || x > size.x + r || y > size.y + r) { continue; }
        ctx.fillStyle = colors[g];
        mark(ctx, shapes[g], x, y, r);
        if (outline) { ctx.stroke(); }
        drawn++;
      }
      this.drawn = drawn;
      this.fire("drawn", {count: drawn});
    },
    _click: function (e) {
      var p = e.containerPoint, best = -1, bestD = 64;
      for (var i = 0; i < this.n; i++) {
        if (!this.visible[this.data.points.group[i]]) { continue; }
        var dx = this._xy[2 * i] - p.x, dy = this._xy[2 * i + 1] - p.y, dd = dx * dx + dy * dy;
        if (dd < bestD) { bestD = dd; best = i; }
      }
      if (best >= 0) {
        this.openPopup(best, [this.data.points.lat[best] / 1e6, this.data.points.lon[best] / 1e6]);
      }
    },
    openPopup: function (row, latlng) {
      L.popup({maxWidth: 420}).setLatLng(latlng).setContent(popupHtml(this.data, row)).openOn(this._map);
    },
    _latlng: function (row) {
      if (row < this.n) { return L.latLng(this.data.points.lat[row] / 1e6, this.data.points.lon[row] / 1e6); }
      return this.shapes[row - this.n].getBounds().getCenter();
    },
    find: function (text) {
      // by identifier, then name, then grid cell code: zoom to what matches, open the first
      var values = this.data.table.values, keys = ["component_id", "name", "grid"];
      for (var j = 0; j < keys.length; j++) {
        var c = values[keys[j]], k = c ? c.dict.indexOf(text) : -1;
        if (k < 0) { continue; }
        var rows = [];
        for (var i = 0; i < c.idx.length; i++) { if (c.idx[i] === k) { rows.push(i); } }
        var bounds = L.latLngBounds(rows.map(this._latlng, this));
        if (rows.length === 1 && rows[0] >= this.n) { bounds = this.shapes[rows[0] - this.n].getBounds(); }
        this._map.fitBounds(bounds.pad(0.2), {maxZoom: 18});
        this.openPopup(rows[0], this._latlng(rows[0]));
        return true;
      }
      return false;
    }
  });
  // The legend: groups under their sections (major classes), each section folded when there are many groups; a
  // box per group and per section shows or hides it, the whole legend folds to one line.
  function legendBox(layer, data, texts) {
    var div = L.DomUtil.create("div", "cg-legend");
    L.DomEvent.disableClickPropagation(div);
    L.DomEvent.disableScrollPropagation(div);
    var sections = [], bySection = {};
    data.groups.forEach(function (g, k) {
      var name = g.section || "";
      if (!(name in bySection)) { bySection[name] = []; sections.push(name); }
      bySection[name].push(k);
    });
    var fold = data.groups.length > 12;
    var html = "<details" + (data.groups.length > 40 ? "" : " open") + "><summary><b>" + esc(texts.legend) +
      "</b> (" + data.groups.length + ")</summary>";
    sections.forEach(function (name, s) {
      var items = bySection[name].map(function (k) {
        var g = data.groups[k];
        return "<label><input type='checkbox' checked data-group='" + k + "'> <span style='color:" + g.color +
          "'>" + (SYMBOLS[g.shape] || SYMBOLS.circle) + "</span> " + esc(g.name) + " " + g.count + "</label><br>";
      }).join("");
      if (!name) { html += items; return; }
      var total = bySection[name].reduce(function (n, k) { return n + data.groups[k].count; }, 0);
      var swatch = bySection[name].slice(0, 4).map(function (k) {
        return "<span style='color:" + data.groups[k].color + "'>" + (SYMBOLS[data.groups[k].shape] || SYMBOLS.circle) +
          "</span>";
      }).join("");
      html += "<details class='cg-section'" + (fold ? "" : " open") + "><summary><input type='checkbox' checked " +
        "data-section='" + s + "'> " + swatch + " " + esc(name) + " (" + total + ")</summary>" + items + "</details>";
    });
    div.innerHTML = html + "</details>";
    div.addEventListener("change", function (ev) {
      var box = ev.target;
      if (box.dataset.group !== undefined) {
        layer.setGroupVisible(+box.dataset.group, box.checked);
      } else if (box.dataset.section !== undefined) {
        bySection[sections[+box.dataset.section]].forEach(function (k) {
          layer.setGroupVisible(k, box.checked);
          div.querySelector("input[data-group='" + k + "']").checked = box.checked;
        });
      }
    });
    return div;
  }
  window.citygrid = {
    CompactLayer: CompactLayer,
    radiusAt: radiusAt,
    layers: [],
    add: function (map, data, options) {
      var texts = options.texts || {legend: "Legend", search: ""};
      if (options.plain) { L.DomUtil.addClass(map.getContainer(), "cg-plain"); }
      addContext(map, options.context);
      var layer = new CompactLayer(data, options).addTo(map);
      window.citygrid.layers.push(layer);
      var title = L.control({position: "topleft"});
      title.onAdd = function () {
        var div = L.DomUtil.create("div", "cg-title");
        div.innerHTML = "<b>" + esc(options.title) + "</b><br><span>" + esc(options.subtitle) + "</span>";
        return div;
      };
      title.addTo(map);
      var legend = L.control({position: "bottomright"});
      legend.onAdd = function () { return legendBox(layer, data, texts); };
      legend.addTo(map);
      var search = L.control({position: "topright"});
      search.onAdd = function () {
        var div = L.DomUtil.create("div", "cg-search");
        div.innerHTML = "<input type='search' size='20'>";
        div.querySelector("input").placeholder = texts.search;
        var input = div.querySelector("input");
        L.DomEvent.disableClickPropagation(div);
        input.addEventListener("keydown", function (ev) {
          if (ev.key === "Enter") {
            input.style.background = layer.find(input.value.trim()) ? "" : "#fdd";
          }
        });
        return div;
      };
      search.addTo(map);
      L.control.scale({imperial: false}).addTo(map);
      return layer;
    }
  };
})();
