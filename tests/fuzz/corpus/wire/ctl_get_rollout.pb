*òJ
iris