"""`make bench`: the PRODUCT budgets measured on the local stack (counted AWS calls, not wall time).

See bench/README.md for what each number means and how to run it.
"""
