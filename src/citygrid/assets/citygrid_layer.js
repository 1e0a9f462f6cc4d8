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
  var CompactLayer = L.Layer.extend({
    initialize: function (data) {
      this.data = data;
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
        var style = {renderer: renderer, color: d.groups[s.g].color, weight: 3, fillOpacity: 0.35};
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
      var r = zoom >= 17 ? 4 : zoom >= 15 ? 3 : zoom >= 13 ? 2 : 1.5;
      var scale = 256 * Math.pow(2, zoom) / (2 * Math.PI);
      var origin = map.getPixelOrigin(), pane = map._getMapPanePos();
      var ox = origin.x - pane.x, oy = origin.y - pane.y;
      var drawn = 0, colors = d.groups.map(function (g) { return g.color; });
      this._xy = new Float32Array(this.n * 2);
      for (var i = 0; i < this.n; i++) {
        var g = pts.group[i];
        var lon = pts.lon[i] / 1e6 * Math.PI / 180, lat = pts.lat[i] / 1e6 * Math.PI / 180;
        var x = scale * (lon + Math.PI) - ox;
        var y = scale * (Math.PI - Math.log(Math.tan(Math.PI / 4 + lat / 2))) - oy;
        this._xy[2 * i] = x; this._xy[2 * i + 1] = y;
        if (!this.visible[g] || x < -r || y < -r || x > size.x + r || y > size.y + r) { continue; }
        ctx.fillStyle = colors[g];
        ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI); ctx.fill();
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
    find: function (id) {
      var c = this.data.table.values.component_id, k = c.dict.indexOf(id);
      if (k < 0) { return false; }
      var row = c.idx.indexOf(k), map = this._map;
      if (row < this.n) {
        var ll = [this.data.points.lat[row] / 1e6, this.data.points.lon[row] / 1e6];
        map.setView(ll, Math.max(map.getZoom(), 18));
        this.openPopup(row, ll);
      } else {
        var shape = this.shapes[row - this.n];
        map.fitBounds(shape.getBounds(), {maxZoom: 18});
        this.openPopup(row, shape.getBounds().getCenter());
      }
      return true;
    }
  });
  window.citygrid = {
    CompactLayer: CompactLayer,
    layers: [],
    add: function (map, data, options) {
      var layer = new CompactLayer(data).addTo(map);
      window.citygrid.layers.push(layer);
      var overlays = {};
      data.groups.forEach(function (g, k) {
        var toggle = L.layerGroup();
        toggle.on("add", function () { layer.setGroupVisible(k, true); });
        toggle.on("remove", function () { layer.setGroupVisible(k, false); });
        toggle.addTo(map);
        var label = "<span style='color:" + g.color + "'>&#9679;</span> " + esc(g.name) + " (" + g.count + ")";
        overlays[label] = toggle;
      });
      if (data.groups.length > 1) { L.control.layers(null, overlays, {collapsed: data.groups.length > 12}).addTo(map); }
      var title = L.control({position: "topleft"});
      title.onAdd = function () {
        var div = L.DomUtil.create("div", "cg-title");
        div.innerHTML = "<b>" + esc(options.title) + "</b><br><span>" + esc(options.subtitle) + "</span>";
        return div;
      };
      title.addTo(map);
      var legend = L.control({position: "bottomright"});
      legend.onAdd = function () {
        var div = L.DomUtil.create("div", "cg-legend");
        div.innerHTML = data.groups.slice(0, 30).map(function (g) {
          return "<div><span style='color:" + g.color + "'>&#9679;</span> " + esc(g.name) + " " + g.count + "</div>";
        }).join("") + (data.groups.length > 30 ? "<div>… " + (data.groups.length - 30) + " more</div>" : "");
        return div;
      };
      legend.addTo(map);
      var search = L.control({position: "topright"});
      search.onAdd = function () {
        var div = L.DomUtil.create("div", "cg-search");
        div.innerHTML = "<input type='search' placeholder='标识码 component id' size='20'>";
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
