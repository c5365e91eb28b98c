# boot.py: the board runs this first after every reset (the unix port does not).
# Kept tiny on purpose: a mistake here leaves the board at the REPL, where it can
# be fixed over USB. Network bring-up and everything else happen in main.py, whose
# loop keeps sampling while the network comes up.
import gc
import sys

if "/lib" not in sys.path:
    sys.path.append("/lib")
gc.collect()
