/*
 * The pause image's only program: every pod sandbox runs it as the process
 * that holds the pod's namespaces. There is no registry here to pull
 * registry.k8s.io/pause from, so scripts/k8s-deps.sh builds this statically
 * and packs it as that image. It behaves like Kubernetes' own pause: it sleeps
 * until SIGINT or SIGTERM (then exits 0), and when it is the pod's PID 1 (a
 * shared process namespace) it reaps the children re-parented to it, so that
 * they do not linger as zombies.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAUSE_VERSION "3.10.2-podwire"

static volatile sig_atomic_t stop_signal;

static void note_stop(int sig)
{
	stop_signal = sig;
}

/* waitpid() inside the handler: the main loop only wakes up on signals, and a
 * burst of exiting children delivers one SIGCHLD for several of them. */
static void reap_children(int sig)
{
	int saved_errno = errno;

	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	errno = saved_errno;
}

static int install_handler(int sig, void (*handler)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL) < 0) {
		fprintf(stderr, "pause: sigaction(%d): %s\n", sig, strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "-v") == 0) {
		printf("pause.c %s\n", PAUSE_VERSION);
		return 0;
	}
	if (getpid() != 1)
		fprintf(stderr, "pause: warning: not PID 1, children of others are not reaped here\n");

	if (install_handler(SIGINT, note_stop) < 0 || install_handler(SIGTERM, note_stop) < 0 ||
	    install_handler(SIGCHLD, reap_children) < 0)
		return 1;

	while (!stop_signal)
		pause();

	fprintf(stderr, "pause: shutting down, got signal %d\n", (int)stop_signal);
	return 0;
}
