gpu-01*R‡
0.1.0
gpua100

rackr3Q
gpu-01.exampleDebian GNU/Linux 12 (bookworm)6.1.0-18-amd64"x86_64(@0€€€€€ ˆ'(2c0ffee8€Ðß´«3