"""Plugin logic without widgets: engine process, settings, class schemes, styling."""
