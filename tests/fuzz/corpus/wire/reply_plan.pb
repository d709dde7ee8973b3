*ú2r0
gpu-01""registry.example.com/models/iris:2(