# Shared by the scripts/qgis_screenshot*.sh scripts (sourced, not run): a throw-away QGIS profile
# with the plugin enabled, and the real QGIS window under Xvfb running a --code startup script.

# shot_profile WORK PLUGIN_SOURCE [ENGINE_PYTHON]: sets PROFILES. PLUGIN_SOURCE is linked in (a
# checkout) or copied (an unpacked plugin zip); without ENGINE_PYTHON the plugin finds its own.
shot_profile() {
    local work="$1" plugin="$2" engine="${3:-}"
    PROFILES="$work/qgis"  # --profiles-path DIR keeps profiles in DIR/profiles/<name>
    local profile="$PROFILES/profiles/default"
    mkdir -p "$profile/python/plugins" "$profile/QGIS"
    if [[ -d "$plugin/engine" ]]; then
        cp -r "$plugin" "$profile/python/plugins/sparsevit_qgis"
    else
        ln -s "$plugin" "$profile/python/plugins/sparsevit_qgis"
    fi
    {
        printf '[PythonPlugins]\nsparsevit_qgis=true\n\n[qgis]\ncheckVersion=false\nshowTips=false\n'
        if [[ -n "$engine" ]]; then printf '\n[sparsevit]\nengine\\python=%s\n' "$engine"; fi
    } > "$profile/QGIS/QGIS3.ini"
}

# shot_run_qgis STARTUP_PY TIMEOUT_S: runs QGIS; sets QGIS_RC.
shot_run_qgis() {
    local start rc=0
    start=$(date +%s)
    ( unset QT_QPA_PLATFORM  # the Makefile exports offscreen; here QGIS draws on the Xvfb display
      timeout "$2" xvfb-run -a -s "-screen 0 1600x1000x24" \
        qgis --profiles-path "$PROFILES" --nologo --noversioncheck --code "$1" ) || rc=$?
    QGIS_RC=$rc
    echo "QGIS ran $(( $(date +%s) - start )) s (exit $rc)"
}

# shot_check PNG...: every screenshot written, or exit 1.
shot_check() {
    local missing=0 png
    for png in "$@"; do
        if [[ -s "$png" ]]; then echo "screenshot: $png"; else echo "no screenshot was written: $png" >&2; missing=1; fi
    done
    return $missing
}
