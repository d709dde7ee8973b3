*òR
irisops@console