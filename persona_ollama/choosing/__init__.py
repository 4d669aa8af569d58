"""Choosing a default model: the hardware probe, accelerator plugins, the model catalogue and
the selection that ranks models against this machine's memory.

Imported only when a default model or a recommendation is needed (never by a generate() that
names its model), so psutil and pluggy stay out of the provider's start-up. Inside, modules
import only downward: ``units`` and ``hookspecs`` (the hook types), then the built-in plugins
(``accelerators``, ``packaged_catalogue``), the plugin manager (``plugins``), and on top the
probe (``hardware``), the ``catalogue`` and ``selection``.
"""
