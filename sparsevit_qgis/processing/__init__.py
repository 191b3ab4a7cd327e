"""Processing provider: every engine command as a toolbox/modeler/qgis_process algorithm."""
