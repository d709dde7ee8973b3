*òB
iris