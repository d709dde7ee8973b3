*ò-z+
gpu-0120261124-023213-1a2bops@console