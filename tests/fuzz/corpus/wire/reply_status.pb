*ú8R7
iris"registry.example.com/models/iris:2 (0€Ğß´«3ZN
gpu-01D
iris"4f2a9c1e7b3d*127.0.0.1:327688€Ğß´«3@HP€ X€ b€ € x