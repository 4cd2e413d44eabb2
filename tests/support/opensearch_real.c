/* A real OpenSearch node for tests: see opensearch_real.h. */
#include "opensearch_real.h"
#include "http_json.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct os_real {
    pid_t pid;
    int port;
    int stdin_fd; /* our end of the node's stdin: closing it stops the node */
    char home[128];
    char url[64];
    char cache[512];
    double start_s;
    char version[32]; /* as the setup recorded it */
    CURL *curl;       /* kept: one connection for a test's many requests */
};

/* The node's process group, for atexit and the fatal-signal handler, and
 * its data directory, which atexit removes when the program ends before
 * os_real_stop (an assertion failed). */
static volatile pid_t live_group;
static char live_home[128];

static void kill_group(void) {
    pid_t g = live_group;
    if (g > 0) {
        kill(-g, SIGKILL);
        waitpid(g, NULL, 0);
        live_group = 0;
    }
    if (live_home[0]) {
        char cmd[192];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", live_home);
        if (system(cmd) != 0)
            fprintf(stderr, "opensearch_real: could not remove %s\n", live_home);
        live_home[0] = '\0';
    }
}

/* Only async-signal-safe calls: kill, fork, execv, waitpid. */
static void on_fatal(int sig) {
    pid_t g = live_group;
    if (g > 0) {
        kill(-g, SIGKILL);
        waitpid(g, NULL, 0);
    }
    if (live_home[0]) {
        pid_t rm = fork();
        if (rm == 0) {
            char *const argv[] = {"rm", "-rf", live_home, NULL};
            execv("/bin/rm", argv);
            _exit(127);
        }
        if (rm > 0)
            waitpid(rm, NULL, 0);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static void guard_once(void) {
    static int done;
    if (done++)
        return;
    atexit(kill_group);
    /* Crash signals stay cmocka's (it fails the test and goes on); a
     * program that dies of one closes the node's stdin, and the node goes. */
    int sigs[] = {SIGABRT, SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        signal(sigs[i], on_fatal);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool readable(const char *path) {
    return access(path, R_OK) == 0;
}

/* Finds the launcher built by scripts/setup.d/30-opensearch.sh:
 * READMODEL_OPENSEARCH_NODE names the node ("opensearch-node", the 2.19
 * default, or "opensearch-node-3"). */
static int find_cache(os_real_t *n) {
    const char *c = getenv("READMODEL_CACHE");
    const char *home = getenv("HOME");
    const char *node = getenv("READMODEL_OPENSEARCH_NODE");
    if (!node || !*node)
        node = "opensearch-node";
    if (c)
        snprintf(n->cache, sizeof(n->cache), "%s/%s", c, node);
    else
        snprintf(n->cache, sizeof(n->cache), "%s/.cache/readmodel/%s", home ? home : "/root", node);
    char p[640];
    snprintf(p, sizeof(p), "%s/classes/RmOpenSearchNode.class", n->cache);
    bool ok = readable(p);
    snprintf(p, sizeof(p), "%s/classpath.txt", n->cache);
    ok = ok && readable(p);
    snprintf(p, sizeof(p), "%s/java_home", n->cache);
    if (ok && readable(p))
        return 0;
    fprintf(stderr,
            "opensearch_real: the OpenSearch node is not built (%s): run "
            "`bash scripts/setup.sh --real`\n",
            n->cache);
    return -1;
}

static char *read_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)len + 1);
    size_t got = s ? fread(s, 1, (size_t)len, f) : 0;
    fclose(f);
    if (s) {
        s[got] = '\0';
        s[strcspn(s, "\r\n")] = '\0';
    }
    return s;
}

static void print_log_tail(const os_real_t *n) {
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "tail -n 40 '%s/node.log' >&2", n->home);
    if (system(cmd) != 0)
        fprintf(stderr, "opensearch_real: no log in %s\n", n->home);
}

static void exec_node(const os_real_t *n, int in_fd, int out_fd, const char *cp_file) {
    setpgid(0, 0);
    dup2(in_fd, 0);
    dup2(out_fd, 1);
    char log[192];
    snprintf(log, sizeof(log), "%s/node.log", n->home);
    int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (lfd >= 0)
        dup2(lfd, 2);
    char *jars = read_file(cp_file);
    size_t cplen = strlen(n->cache) + (jars ? strlen(jars) : 0) + 16;
    char *cp = malloc(cplen);
    if (!jars || !cp)
        _exit(126);
    snprintf(cp, cplen, "%s/classes:%s", n->cache, jars);
    char port[16];
    snprintf(port, sizeof(port), "%d", n->port);
    char jh_file[640];
    snprintf(jh_file, sizeof(jh_file), "%s/java_home", n->cache);
    char *jh = read_file(jh_file); /* the JDK the setup compiled it with */
    char java[512];
    snprintf(java, sizeof(java), "%s/bin/java", jh && *jh ? jh : "/usr");
    const char *heap = getenv("READMODEL_OPENSEARCH_HEAP");
    char xms[32], xmx[32];
    snprintf(xms, sizeof(xms), "-Xms%s", heap ? heap : "512m");
    snprintf(xmx, sizeof(xmx), "-Xmx%s", heap ? heap : "512m");
    execl(java, java, xms, xmx, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
          "-Djava.awt.headless=true", "-Dfile.encoding=UTF-8", "-cp", cp, "RmOpenSearchNode",
          n->home, port, "--exit-on-stdin-eof", (char *)NULL);
    _exit(127);
}

/* Reads the launcher's "RM_OPENSEARCH_READY http=PORT" line. */
static int await_ready(os_real_t *n, int out_fd, int timeout_s) {
    char buf[256];
    size_t have = 0;
    double deadline = now_s() + timeout_s;
    while (now_s() < deadline) {
        struct pollfd p = {out_fd, POLLIN, 0};
        int r = poll(&p, 1, 500);
        if (r < 0 && errno != EINTR)
            return -1;
        if (r > 0) {
            ssize_t got = read(out_fd, buf + have, sizeof(buf) - 1 - have);
            if (got <= 0)
                return -1; /* the JVM exited */
            have += (size_t)got;
            buf[have] = '\0';
            char *ready = strstr(buf, "RM_OPENSEARCH_READY http=");
            if (ready && strchr(ready, '\n')) {
                n->port = atoi(ready + strlen("RM_OPENSEARCH_READY http="));
                return n->port > 0 ? 0 : -1;
            }
            if (have == sizeof(buf) - 1)
                have = 0;
        }
    }
    return -1;
}

static int spawn(os_real_t *n) {
    char cp_file[640];
    snprintf(cp_file, sizeof(cp_file), "%s/classpath.txt", n->cache);
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    double t0 = now_s();
    pid_t pid = fork();
    if (pid == 0)
        exec_node(n, in[0], out[1], cp_file);
    close(in[0]);
    close(out[1]);
    if (pid < 0) {
        close(in[1]);
        close(out[0]);
        return -1;
    }
    setpgid(pid, pid); /* also here: no window where the group does not exist */
    n->pid = pid;
    live_group = pid;
    n->stdin_fd = in[1];
    int rc = await_ready(n, out[0], 180);
    close(out[0]);
    if (rc != 0) {
        fprintf(stderr, "opensearch_real: the node did not start; its log:\n");
        print_log_tail(n);
        return -1;
    }
    snprintf(n->url, sizeof(n->url), "http://127.0.0.1:%d", n->port);
    long st = 0;
    json_decref(
        os_real_http(n, "GET", "/_cluster/health?wait_for_status=yellow&timeout=60s", NULL, &st));
    n->start_s = now_s() - t0;
    return st == 200 ? 0 : -1;
}

/* Whether some mount point of this process's mount table is dir or one of
 * its parents. OpenSearch asks Java for the file store of its data path,
 * which fails ("Mount point not found") when none is: inside a chroot whose
 * root is not itself a mount point (a minimal build root such as
 * ../shared/tools/fresh-machine.sh makes). */
static bool mount_covers(const char *dir) {
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return true; /* cannot tell: assume a normal machine */
    char line[4096], mp[1024];
    bool covered = false;
    while (!covered && fgets(line, sizeof(line), f)) {
        /* id parent major:minor root mount-point ... */
        if (sscanf(line, "%*s %*s %*s %*s %1023s", mp) != 1)
            continue;
        size_t l = strlen(mp);
        covered =
            strcmp(mp, "/") == 0 || (strncmp(dir, mp, l) == 0 && (dir[l] == '/' || dir[l] == '\0'));
    }
    fclose(f);
    return covered;
}

os_real_t *os_real_start(void) {
    guard_once();
    os_real_t *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->stdin_fd = -1;
    /* /tmp, or in a chroot without a mount at / the first of /dev/shm and
     * /dev that is a mount point (see mount_covers). */
    const char *base = "/tmp";
    if (!mount_covers("/tmp"))
        base = mount_covers("/dev/shm") ? "/dev/shm" : "/dev";
    snprintf(n->home, sizeof(n->home), "%s/rm-opensearch-XXXXXX", base);
    if (find_cache(n) != 0 || !mkdtemp(n->home)) {
        free(n);
        return NULL;
    }
    snprintf(live_home, sizeof(live_home), "%s", n->home);
    char vf[640];
    snprintf(vf, sizeof(vf), "%s/version", n->cache);
    char *v = read_file(vf);
    snprintf(n->version, sizeof(n->version), "%s", v ? v : "?");
    free(v);
    if (spawn(n) != 0) {
        os_real_stop(n);
        return NULL;
    }
    return n;
}

/* Waits for the node's exit at most timeout_s; true when it exited. */
static bool reap(os_real_t *n, int timeout_s) {
    double deadline = now_s() + timeout_s;
    while (now_s() < deadline) {
        pid_t r = waitpid(n->pid, NULL, WNOHANG);
        if (r == n->pid || (r < 0 && errno == ECHILD))
            return true;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

static void end_process(os_real_t *n, bool hard) {
    if (n->pid <= 0)
        return;
    if (!hard) {
        kill(-n->pid, SIGCONT);
        kill(-n->pid, SIGTERM);
    }
    if (hard || !reap(n, 30)) {
        kill(-n->pid, SIGKILL);
        waitpid(n->pid, NULL, 0);
    }
    /* A JVM leaves no children, but the group is killed whole anyway. */
    kill(-n->pid, SIGKILL);
    if (n->stdin_fd >= 0)
        close(n->stdin_fd);
    n->stdin_fd = -1;
    live_group = 0;
    n->pid = 0;
}

void os_real_stop(os_real_t *n) {
    if (!n)
        return;
    end_process(n, false);
    if (n->home[0]) {
        char cmd[192];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", n->home);
        if (system(cmd) != 0)
            fprintf(stderr, "opensearch_real: could not remove %s\n", n->home);
        if (!strcmp(live_home, n->home))
            live_home[0] = '\0';
    }
    if (n->curl)
        curl_easy_cleanup(n->curl);
    free(n);
}

const char *os_real_version(const os_real_t *n) {
    return n->version;
}

int os_real_port(const os_real_t *n) {
    return n->port;
}

const char *os_real_url(const os_real_t *n) {
    return n->url;
}

pid_t os_real_pid(const os_real_t *n) {
    return n->pid;
}

double os_real_start_seconds(const os_real_t *n) {
    return n->start_s;
}

/* A "Name:   N kB" line of /proc/PID/status, or -1. */
static long proc_status_kib(const os_real_t *n, const char *name) {
    char path[64], line[256];
    size_t len = strlen(name);
    snprintf(path, sizeof(path), "/proc/%d/status", (int)n->pid);
    FILE *f = n->pid > 0 ? fopen(path, "r") : NULL;
    long kib = -1;
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, name, len))
            kib = atol(line + len);
    if (f)
        fclose(f);
    return kib;
}

long os_real_rss_kib(const os_real_t *n) {
    return proc_status_kib(n, "VmRSS:");
}

long os_real_peak_rss_kib(const os_real_t *n) {
    return proc_status_kib(n, "VmHWM:");
}

void os_real_pause(os_real_t *n) {
    kill(-n->pid, SIGSTOP);
}

void os_real_resume(os_real_t *n) {
    kill(-n->pid, SIGCONT);
}

void os_real_kill(os_real_t *n) {
    end_process(n, true);
}

int os_real_restart(os_real_t *n, bool keep_data) {
    end_process(n, true);
    if (!keep_data) {
        char cmd[192];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s/data'", n->home);
        if (system(cmd) != 0)
            return -1;
    }
    return spawn(n);
}

json_t *os_real_http(const os_real_t *n, const char *method, const char *path, const char *body,
                     long *status) {
    os_real_t *m = (os_real_t *)n;
    if (!m->curl)
        m->curl = curl_easy_init();
    *status = 0;
    if (!m->curl)
        return NULL;
    char url[1024];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", n->port, path);
    return test_http_json(m->curl, method, url, body, NULL, status);
}

int os_real_wipe(os_real_t *n) {
    long st;
    json_decref(os_real_http(n, "DELETE", "/_all?expand_wildcards=all", NULL, &st));
    if (st != 200)
        fprintf(stderr, "opensearch_real: DELETE /_all answered %ld\n", st);
    return st == 200 ? 0 : -1;
}
