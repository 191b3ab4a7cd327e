"""The QGIS plugin object: actions, the SparseViT panel and the Processing provider."""
from __future__ import annotations

from pathlib import Path

from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QCoreApplication, QLocale, QSettings, Qt, QTranslator, QUrl
from qgis.PyQt.QtGui import QDesktopServices, QIcon
from qgis.PyQt.QtWidgets import QAction

PLUGIN_DIR = Path(__file__).resolve().parent
ICON = PLUGIN_DIR / "icons" / "icon.svg"
HELP = PLUGIN_DIR / "help" / "index.html"
MENU = "&SparseViT"


def tr(text: str) -> str:
    return QCoreApplication.translate("SparseVitPlugin", text)


class SparseVitPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.dock = None
        self.provider = None
        self.toggle_action: QAction | None = None
        self.help_action: QAction | None = None
        self._menu_actions: list[QAction] = []
        self.translator = self._install_translator()

    @staticmethod
    def _install_translator():
        locale = str(QSettings().value("locale/userLocale", QLocale().name()) or "")[:2]
        qm = PLUGIN_DIR / "i18n" / f"sparsevit_{locale}.qm"
        if not qm.is_file():
            return None
        translator = QTranslator()
        if translator.load(str(qm)):
            QCoreApplication.installTranslator(translator)
            return translator
        return None

    # --- QGIS hooks ----------------------------------------------------------------------
    def initProcessing(self) -> None:  # noqa: N802
        # Imported here: QGIS calls initProcessing even for qgis_process, without any GUI.
        from .processing.provider import SparseVitProvider
        if self.provider is not None:  # initGui calls this too; register once
            return
        self.provider = SparseVitProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802
        self.initProcessing()
        main = self.iface.mainWindow()
        self.toggle_action = QAction(QIcon(str(ICON)), tr("SparseViT land cover"), main)
        self.toggle_action.setObjectName("sparsevit_toggle_dock")
        self.toggle_action.setCheckable(True)
        self.toggle_action.setToolTip(tr("Show or hide the SparseViT panel"))
        self.toggle_action.toggled.connect(self._set_dock_visible)
        self.help_action = QAction(QIcon(str(ICON)), tr("SparseViT help"), main)
        self.help_action.setObjectName("sparsevit_help")
        self.help_action.triggered.connect(self.show_help)

        self.iface.addToolBarIcon(self.toggle_action)
        for action in (self.toggle_action, self.help_action):
            self.iface.addPluginToRasterMenu(MENU, action)
            self._menu_actions.append(action)
        help_menu = self.iface.pluginHelpMenu()
        if help_menu is not None:
            help_menu.addAction(self.help_action)

    def unload(self) -> None:
        if self.dock is not None:
            self.dock.shutdown()
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None
        for action in self._menu_actions:
            self.iface.removePluginRasterMenu(MENU, action)
        self._menu_actions = []
        if self.toggle_action is not None:
            self.iface.removeToolBarIcon(self.toggle_action)
        help_menu = self.iface.pluginHelpMenu()
        if help_menu is not None and self.help_action is not None:
            help_menu.removeAction(self.help_action)
        for action in (self.toggle_action, self.help_action):
            if action is not None:
                action.deleteLater()
        self.toggle_action = self.help_action = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.translator is not None:
            QCoreApplication.removeTranslator(self.translator)
            self.translator = None

    # --- actions -------------------------------------------------------------------------
    def _set_dock_visible(self, visible: bool) -> None:
        if visible and self.dock is None:
            # Created on first use: start-up cost only for people who open it.
            from .gui.dock import SparseVitDock
            self.dock = SparseVitDock(self.iface, self.iface.mainWindow())
            self.dock.openedStateChanged.connect(self._dock_opened_changed)
            self.iface.addDockWidget(Qt.RightDockWidgetArea, self.dock)
        if self.dock is not None:
            self.dock.setUserVisible(visible)

    def _dock_opened_changed(self, opened: bool) -> None:
        # Closing the panel with its own X must un-check the toolbar button (and a panel
        # merely tabbed behind another one stays "opened").
        if self.toggle_action is not None and self.toggle_action.isChecked() != opened:
            self.toggle_action.blockSignals(True)
            self.toggle_action.setChecked(opened)
            self.toggle_action.blockSignals(False)

    def show_help(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(HELP)))
