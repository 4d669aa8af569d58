"""Choosing a default model: the hardware probe, accelerator plugins, the model catalogue, the
speed model and the selection that ranks models against this machine's memory and speed.

Imported only when a default model or a recommendation is needed (never by a generate() that
names its model), so psutil and pluggy stay out of the provider's start-up. Inside, modules
import only downward: ``units``, ``hookspecs`` (the hook types), ``modelfacts`` and
``quality`` (plain data and formulas), then the built-in plugins (``accelerators``,
``packaged_catalogue``), the plugin manager (``plugins``), the ``speed`` model and its
``validation`` data, and on top the probe (``hardware``), the ``catalogue`` and ``selection``.
"""
