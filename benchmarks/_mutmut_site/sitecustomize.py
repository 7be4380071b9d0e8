# For mutmut only: the shared venv's editable install of oversight (an import hook) would shadow
# the mutated copy; drop the hook so sys.path decides.
import sys

sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
