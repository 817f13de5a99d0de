/*
 * mqtt_publish.c: a QoS 1 MQTT publisher for edgelog's benchmarks and crash tests, with a
 * window of unacknowledged messages (mosquitto_pub has none to speak of: it sends one line at a
 * time) and an optional steady rate.
 *
 * Each payload is JSON padded with spaces to --size bytes:
 *   {"seq":123,"t_us":1764500000123456,"pub":"p0"}
 * where t_us is the wall-clock time (CLOCK_REALTIME, microseconds) when the message was
 * handed to libmosquitto, so a reader can compute publish-to-read latency.
 *
 * Build: cc -O2 -o mqtt_publish Tests/Interop/mqtt_publish.c -lmosquitto -lpthread
 * Usage: mqtt_publish --port P --topic T --count N [--rate MSG_PER_S] [--window W]
 *                     [--size BYTES] [--id CLIENT_ID] [--first SEQ]
 * Prints one line when every message is acknowledged by the broker:
 *   published N in S s (R msg/s)
 * Exits 1 on any error (connection lost, broker refused).
 */
#include <errno.h>
#include <getopt.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static long acknowledged = 0;
static int connected = 0;
static int failed = 0;

static long long now_us(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static void on_connect(struct mosquitto *mosq, void *data, int rc) {
    (void)mosq; (void)data;
    pthread_mutex_lock(&lock);
    if (rc == 0) connected = 1; else failed = 1;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void on_disconnect(struct mosquitto *mosq, void *data, int rc) {
    (void)mosq; (void)data;
    pthread_mutex_lock(&lock);
    if (rc != 0) failed = 1;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void on_publish(struct mosquitto *mosq, void *data, int mid) {
    (void)mosq; (void)data; (void)mid;
    pthread_mutex_lock(&lock);
    acknowledged++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

int main(int argc, char **argv) {
    int port = 1883, window = 1000, size = 100;
    long count = 0, first = 0;
    double rate = 0;
    const char *topic = NULL, *id = NULL, *name = "p0";
    static struct option options[] = {
        {"port", required_argument, 0, 'p'}, {"topic", required_argument, 0, 't'},
        {"count", required_argument, 0, 'n'}, {"rate", required_argument, 0, 'r'},
        {"window", required_argument, 0, 'w'}, {"size", required_argument, 0, 's'},
        {"id", required_argument, 0, 'i'}, {"first", required_argument, 0, 'f'},
        {"name", required_argument, 0, 'a'}, {0, 0, 0, 0}};
    int option;
    while ((option = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (option) {
        case 'p': port = atoi(optarg); break;
        case 't': topic = optarg; break;
        case 'n': count = atol(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'w': window = atoi(optarg); break;
        case 's': size = atoi(optarg); break;
        case 'i': id = optarg; break;
        case 'f': first = atol(optarg); break;
        case 'a': name = optarg; break;
        default: return 2;
        }
    }
    if (!topic || count <= 0 || window < 1 || size < 64 || size > 65536) {
        fprintf(stderr, "usage: %s --port P --topic T --count N [--rate R] [--window W] [--size B] [--id ID] [--first SEQ] [--name NAME]\n", argv[0]);
        return 2;
    }
    mosquitto_lib_init();
    struct mosquitto *mosq = mosquitto_new(id, true, NULL);
    if (!mosq) { perror("mosquitto_new"); return 1; }
    mosquitto_max_inflight_messages_set(mosq, (unsigned int)window);
    mosquitto_connect_callback_set(mosq, on_connect);
    mosquitto_disconnect_callback_set(mosq, on_disconnect);
    mosquitto_publish_callback_set(mosq, on_publish);
    if (mosquitto_connect(mosq, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS) { fprintf(stderr, "cannot connect to 127.0.0.1:%d\n", port); return 1; }
    if (mosquitto_loop_start(mosq) != MOSQ_ERR_SUCCESS) { fprintf(stderr, "mosquitto_loop_start failed\n"); return 1; }
    pthread_mutex_lock(&lock);
    while (!connected && !failed) pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
    if (failed) { fprintf(stderr, "the broker refused the connection\n"); return 1; }

    char *payload = malloc((size_t)size);
    long long started = now_us(CLOCK_MONOTONIC);
    for (long i = 0; i < count; i++) {
        // Keep at most `window` messages unacknowledged, so t_us is close to the send time.
        pthread_mutex_lock(&lock);
        while (i - acknowledged >= window && !failed) pthread_cond_wait(&changed, &lock);
        int stop = failed;
        pthread_mutex_unlock(&lock);
        if (stop) { fprintf(stderr, "connection lost after %ld messages\n", i); return 1; }
        if (rate > 0) {
            long long due = started + (long long)((double)i * 1e6 / rate);
            long long wait = due - now_us(CLOCK_MONOTONIC);
            if (wait > 0) usleep((useconds_t)wait);
        }
        int length = snprintf(payload, (size_t)size, "{\"seq\":%ld,\"t_us\":%lld,\"pub\":\"%s\"}", first + i, now_us(CLOCK_REALTIME), name);
        if (length < 0 || length >= size) length = size - 1;
        memset(payload + length, ' ', (size_t)(size - length));
        int rc = mosquitto_publish(mosq, NULL, topic, size, payload, 1, false);
        if (rc != MOSQ_ERR_SUCCESS) { fprintf(stderr, "publish: %s\n", mosquitto_strerror(rc)); return 1; }
    }
    pthread_mutex_lock(&lock);
    while (acknowledged < count && !failed) pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
    if (failed && acknowledged < count) { fprintf(stderr, "connection lost with %ld of %ld acknowledged\n", acknowledged, count); return 1; }
    double seconds = (double)(now_us(CLOCK_MONOTONIC) - started) / 1e6;
    printf("published %ld in %.3f s (%.0f msg/s)\n", count, seconds, (double)count / seconds);
    fflush(stdout);
    mosquitto_disconnect(mosq);
    mosquitto_loop_stop(mosq, false);
    mosquitto_destroy(mosq);
    mosquitto_lib_cleanup();
    free(payload);
    return 0;
}
