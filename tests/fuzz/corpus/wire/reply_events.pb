*úÑ"m
gpu-01Y’Ğß´«3service.healthy"iris*5revision 2 healthy on 127.0.0.1:32768
	after 3 probes0äĞß´«3 Ò	"^WĞß´«3service.healthy"iris*5revision 2 healthy on 127.0.0.1:32768
	after 3 probes Ó	(0