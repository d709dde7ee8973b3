*ú†‚— 5d41402abc4b2a76b9719d911017c592"20261124-023213-1a2b*nightly2ops@console8€Ðß´«3jgpu-01r

irisz(

iris (20261124-023213-1a2bŠç
gpu-01Õ
20261124-023213-1a2b€Ðß´«3before rollout 3 of iris"

iris(€€@2@60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752:@9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08@Ziris`ready