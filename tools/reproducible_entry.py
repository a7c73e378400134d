"""Build entry point for reproducible componentize-py builds (see the Makefile).

componentize-py snapshots the interpreter after importing the app. Python's import system
keeps each searched folder's modification time (FileFinder._path_mtime) and a listing of
its files; componentize-py extracts the standard library and writes the bindings into new
temporary folders on every build, so those times differ from build to build and would end
up in the component. This module imports the app and everything componentize-py imports
after it, then drops those caches. Nothing else is changed: imports at run time find the
same modules, already loaded.
"""

import importlib
import random  # noqa: F401  imported by componentize-py after the app
import weakref  # noqa: F401  imported by componentize-py after the app

from app import *  # noqa: F401,F403  the exported classes: PyTasks, Options, Keys

importlib.invalidate_caches()
