"""Opens QGIS projects with PyQGIS and reports what QGIS makes of them, as JSON on stdout.

Run by ``tests/maps/test_qgis_project.py`` with Debian's ``/usr/bin/python3`` (PyQGIS is
not in the project's venv), headless (``QT_QPA_PLATFORM=offscreen``)::

    /usr/bin/python3 tests/maps/qgis_check.py JOB.json

``JOB.json`` is a list of ``{"project": PATH.qgz, "renders": [...]}``; each render is
``{"png": PATH, "layers": [ids] or null (the visible layers of the tree), "size": [w, h]}``,
drawn over the project's first view. The answer is one report per project: per layer its
validity, provider, source, feature count (by reading every feature), the features of each
class of its renderer (the class expression evaluated by QGIS), renderer classes with
colours, vector tile styles and labels; the layer tree with its check boxes; the CRS and
first view; and what each render drew.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from qgis.core import (  # type: ignore[import-not-found]
    QgsApplication,
    QgsCategorizedSymbolRenderer,
    QgsExpression,
    QgsExpressionContext,
    QgsExpressionContextUtils,
    QgsGraduatedSymbolRenderer,
    QgsLayerTreeGroup,
    QgsLayerTreeLayer,
    QgsMapLayerType,
    QgsMapRendererParallelJob,
    QgsMapSettings,
    QgsProject,
    QgsSingleSymbolRenderer,
)
from qgis.PyQt.QtCore import QSize  # type: ignore[import-not-found]
from qgis.PyQt.QtGui import QColor  # type: ignore[import-not-found]


def symbol_info(symbol: Any) -> dict[str, Any]:
    return {"type": symbol.type(), "color": symbol.color().name(),
            "layers": [{"class": sl.layerType(), "props": dict(sl.properties())}
                       for sl in symbol.symbolLayers()]}


def renderer_info(layer: Any) -> dict[str, Any]:
    renderer = layer.renderer()
    if isinstance(renderer, QgsCategorizedSymbolRenderer):
        expression = QgsExpression(renderer.classAttribute())
        context = QgsExpressionContext(
            QgsExpressionContextUtils.globalProjectLayerScopes(layer))
        counts: dict[str, int] = {}
        for feature in layer.getFeatures():
            context.setFeature(feature)
            value = expression.evaluate(context)
            # a null takes the default category, whose value is ""
            key = "" if value is None or str(value) == "NULL" else str(value)
            counts[key] = counts.get(key, 0) + 1
        return {"type": "categorized", "expression": renderer.classAttribute(),
                "expression_error": expression.parserErrorString() or None,
                "counts": counts,
                "categories": [{"value": c.value(), "label": c.label(),
                                "symbol": symbol_info(c.symbol())}
                               for c in renderer.categories()]}
    if isinstance(renderer, QgsGraduatedSymbolRenderer):
        values = [f[renderer.classAttribute()] for f in layer.getFeatures()]
        return {"type": "graduated", "field": renderer.classAttribute(),
                "ranges": [{"lower": r.lowerValue(), "upper": r.upperValue(), "label": r.label(),
                            "symbol": symbol_info(r.symbol()),
                            "count": sum(1 for v in values
                                         if v is not None and str(v) != "NULL"
                                         and r.lowerValue() <= v <= r.upperValue())}
                           for r in renderer.ranges()]}
    if isinstance(renderer, QgsSingleSymbolRenderer):
        return {"type": "single", "symbol": symbol_info(renderer.symbol())}
    return {"type": renderer.type()}


def layer_info(layer: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"name": layer.name(), "valid": layer.isValid(),
                            "provider": layer.providerType(), "source": layer.source(),
                            "crs": layer.crs().authid()}
    if layer.type() == QgsMapLayerType.VectorLayer:
        info["kind"] = "vector"
        info["count"] = sum(1 for _ in layer.getFeatures())
        info["fields"] = layer.fields().names()
        info["subset"] = layer.subsetString()
        info["renderer"] = renderer_info(layer)
        info["labels"] = layer.labelsEnabled()
        if layer.labelsEnabled():
            # each object kept in a variable: a temporary's parts die with it (a crash)
            labeling = layer.labeling()
            settings = labeling.settings()
            text_format = settings.format()
            background = text_format.background()
            info["label_expression"] = settings.fieldName
            info["label_background"] = background.fillColor().name()
    elif layer.type() == QgsMapLayerType.VectorTileLayer:
        info["kind"] = "vectortile"
        info["zooms"] = [layer.sourceMinZoom(), layer.sourceMaxZoom()]
        # the styles are copies: kept in a variable while their symbols are read
        styles = layer.renderer().styles()
        info["styles"] = []
        for style in styles:
            symbol = style.symbol()
            info["styles"].append({"name": style.styleName(), "layer": style.layerName(),
                                   "expression": style.filterExpression(),
                                   "min_zoom": style.minZoomLevel(),
                                   "geometry": int(style.geometryType()),
                                   "symbol": symbol_info(symbol)})
    else:
        info["kind"] = "raster"
    return info


def tree_info(node: Any) -> dict[str, Any]:
    if isinstance(node, QgsLayerTreeGroup):
        return {"group": node.name(), "checked": node.isVisible(),
                "children": [tree_info(child) for child in node.children()]}
    assert isinstance(node, QgsLayerTreeLayer)
    return {"layer": node.layerId(), "checked": node.isVisible()}


def render(project: Any, spec: dict[str, Any]) -> dict[str, Any]:
    root = project.layerTreeRoot()
    if spec.get("layers") is None:
        layers = [tl.layer() for tl in root.findLayers() if tl.isVisible()]
    else:
        layers = [project.mapLayer(layer_id) for layer_id in spec["layers"]]
    extent = project.viewSettings().defaultViewExtent()
    settings = QgsMapSettings()
    settings.setLayers(layers)
    settings.setDestinationCrs(project.crs())
    settings.setOutputSize(QSize(*spec.get("size", (800, 800))))
    settings.setExtent(extent)
    settings.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    ok = image.save(spec["png"], "PNG")
    return {"png": spec["png"], "saved": ok, "layers": [layer.id() for layer in layers],
            "scale": settings.scale(),
            "errors": [f"{e.layerID}: {e.message}" for e in job.errors()]}


def report(project: Any, path: str, renders: list[dict[str, Any]]) -> dict[str, Any]:
    """What QGIS makes of the project at ``path``, and the pictures of ``renders``."""
    out: dict[str, Any] = {"read": project.read(path)}
    extent = project.viewSettings().defaultViewExtent()
    out.update(
        title=project.title(), crs=project.crs().authid(),
        extent=[extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()],
        tree=tree_info(project.layerTreeRoot()),
        layers={layer_id: layer_info(layer)
                for layer_id, layer in project.mapLayers().items()},
        renders=[render(project, spec) for spec in renders])
    project.clear()
    return out


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        job = json.load(f)
    app = QgsApplication([], False)
    app.initQgis()
    project = QgsProject.instance()
    reports = [report(project, item["project"], item["renders"]) for item in job]
    sys.stdout.write(json.dumps(reports))
    sys.stdout.flush()
    app.exitQgis()


if __name__ == "__main__":
    main()
