*ò$Z"
irisbad weights"ops@console