"""Adapters to host frameworks, installed as ``synthaug.integrations.<name>``.

The core package never imports these modules, so their frameworks stay optional.
"""
