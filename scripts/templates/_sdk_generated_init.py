# (template of scripts/generate.py: the generated module starts below this line)
"""The SDK's resource layer, generated from openapi.yaml and scripts/templates/resources.yaml: never edited by hand."""
