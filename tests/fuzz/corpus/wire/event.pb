gpu-01*ŠY’Ðß´«3service.healthy"iris*5revision 2 healthy on 127.0.0.1:32768
	after 3 probes0