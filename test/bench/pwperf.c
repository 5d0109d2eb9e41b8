/* pwperf: TCP request/response benchmarks in the style of netperf's TCP_RR
 * and TCP_CRR (netperf is not in Debian main).
 *   pwperf server PORT [PORT...]        serve both tests until killed
 *   pwperf rr  HOST PORT SECONDS        1-byte ping-pong on one connection
 *   pwperf crr HOST PORT SECONDS        connect, 1-byte ping-pong, close, repeat
 * Prints "<test> <transactions/s>" on stdout. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void set_nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int serve_connection(int fd)
{
	char b;
	set_nodelay(fd);
	while (read(fd, &b, 1) == 1)
		if (write(fd, &b, 1) != 1)
			break;
	close(fd);
	return 0;
}

static int listen_on(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);

	if (lfd < 0)
		return -1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 1024)) {
		close(lfd);
		return -1;
	}
	return lfd;
}

/* Several ports, one process: a service whose backends are these ports is
 * then served by the same process as a direct connection to one of them, so
 * comparing the two measures the path, not a second server's wake-ups. */
static int run_server(int nports, char **ports)
{
	struct pollfd pfd[16];
	int i;

	if (nports > 16)
		return fprintf(stderr, "pwperf server: at most 16 ports\n"), 2;
	for (i = 0; i < nports; i++) {
		pfd[i] = (struct pollfd){ .fd = listen_on(atoi(ports[i])), .events = POLLIN };
		if (pfd[i].fd < 0)
			return perror("pwperf server"), 1;
	}
	signal(SIGCHLD, SIG_IGN);
	for (;;) {
		if (poll(pfd, nports, -1) < 0)
			continue;
		for (i = 0; i < nports; i++) {
			int fd;

			if (!(pfd[i].revents & POLLIN) || (fd = accept(pfd[i].fd, NULL, NULL)) < 0)
				continue;
			/* RR keeps its connection for the whole run; CRR connections are
			 * short. Serve each inline: one client at a time is the test. */
			serve_connection(fd);
		}
	}
}

static int connect_to(const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (fd < 0)
		return -1;
	/* RST on close, as netperf's CRR does not linger in TIME_WAIT either:
	 * otherwise the client runs out of ephemeral ports within seconds. */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa))) {
		close(fd);
		return -1;
	}
	set_nodelay(fd);
	return fd;
}

static int ping_pong(int fd)
{
	char b = 'x';
	return write(fd, &b, 1) == 1 && read(fd, &b, 1) == 1 ? 0 : -1;
}

static int run_client(const char *test, const char *host, int port, double secs)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	long n = 0;
	double t0, t1;
	int fd = -1;

	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "pwperf: bad address %s\n", host);
		return 2;
	}
	if (!strcmp(test, "rr") && (fd = connect_to(&sa)) < 0) {
		perror("pwperf connect");
		return 1;
	}
	t0 = now_s();
	t1 = t0 + secs;
	while (now_s() < t1) {
		if (fd >= 0) {
			if (ping_pong(fd))
				return perror("pwperf rr"), 1;
		} else {
			int c = connect_to(&sa);
			if (c < 0 || ping_pong(c))
				return perror("pwperf crr"), 1;
			close(c);
		}
		n++;
	}
	printf("%s %.0f\n", test, n / (now_s() - t0));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "server"))
		return run_server(argc - 2, argv + 2);
	if (argc == 5 && (!strcmp(argv[1], "rr") || !strcmp(argv[1], "crr")))
		return run_client(argv[1], argv[2], atoi(argv[3]), atof(argv[4]));
	fprintf(stderr, "usage: pwperf server PORT [PORT...] | pwperf rr|crr HOST PORT SECONDS\n");
	return 2;
}
