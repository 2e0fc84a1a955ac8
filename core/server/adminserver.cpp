// SPDX-License-Identifier: MIT
#include "adminserver.h"

#include "adminauth.h"
#include "apierror.h"
#include "httpreply.h"
#include "requestbody.h"
#include "requestguard.h"
#include "routetable.h"
#include "runexport.h"
#include "runfollower.h"
#include "runowner.h"
#include "runstore.h"
#include "runstream.h"
#include "servermetrics.h"
#include "taskengine.h"
#include "taskregistry.h"
#include "traceparent.h"
#include "whendone.h"
#include "webassets.h"

#include <QAbstractHttpServer>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QFuture>
#include <QHttpServerRequest>
#include <QHttpServerResponder>
#include <QJsonArray>
#include <QJsonDocument>
#include <QPointer>
#include <QQueue>
#include <QStringDecoder>
#include <QTcpServer>
#include <QTcpSocket>
#include <QUrlQuery>
#include <QUuid>
#include <QWebSocket>

#include <atomic>
#include <limits>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

const QByteArray SessionCookie = "taskdeck_session";
const QByteArray CsrfCookie = "taskdeck_csrf";

// A request's headers, taken once: looking one up is a scan without allocations (each
// QHttpServerRequest::value() call makes copies).
class HeaderView
{
public:
    explicit HeaderView(const QHttpServerRequest &request) : m_headers(request.headers()) {}

    /*! The value of header \a lowerName (given in lower case), empty when it is absent. */
    QByteArray value(QByteArrayView lowerName) const
    {
        for (const auto &header : m_headers) {
            if (equalsLower(header.first, lowerName))
                return header.second;
        }
        return QByteArray();
    }

private:
    static bool equalsLower(QByteArrayView name, QByteArrayView lower)
    {
        if (name.size() != lower.size())
            return false;
        for (qsizetype i = 0; i < name.size(); ++i) {
            const char c = name.at(i);
            if ((c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c) != lower.at(i))
                return false;
        }
        return true;
    }

    const QList<QPair<QByteArray, QByteArray>> m_headers;
};

struct Call
{
    const QHttpServerRequest &request;
    const HeaderView &headers;
    QStringList params;
    HttpReplyPtr reply;
};
using Handler = std::function<void(const Call &)>;
using Routes = RouteTable<Handler>;

[[noreturn]] void fail(ApiError::Kind kind, const QString &message, FieldErrors fields = {})
{
    throw ApiError{kind, message, std::move(fields), {}};
}

QByteArray methodName(QHttpServerRequest::Method method)
{
    using M = QHttpServerRequest::Method;
    switch (method) {
    case M::Get: return "GET";
    case M::Head: return "HEAD";
    case M::Post: return "POST";
    case M::Put: return "PUT";
    case M::Delete: return "DELETE";
    case M::Options: return "OPTIONS";
    case M::Patch: return "PATCH";
    case M::Connect: return "CONNECT";
    case M::Trace: return "TRACE";
    default: break;
    }
    return "UNKNOWN";
}

// Path segments, each URL-decoded once. Segments that could name another place ("..", an
// encoded '/', control characters) make the path unknown rather than reinterpreted.
std::optional<QStringList> pathSegments(const QUrl &url)
{
    const QByteArray encoded = url.path(QUrl::FullyEncoded).toUtf8();
    QStringList segments;
    for (qsizetype start = 0; start <= encoded.size();) {
        qsizetype end = encoded.indexOf('/', start);
        if (end < 0)
            end = encoded.size();
        const QByteArrayView part = QByteArrayView(encoded).sliced(start, end - start);
        start = end + 1;
        const QString segment = part.contains('%') ? QUrl::fromPercentEncoding(part.toByteArray())
                                                   : QString::fromUtf8(part);
        if (segment == u".." || segment == u"." || segment.contains(u'/') || segment.contains(u'\\'))
            return std::nullopt;
        for (const QChar c : segment) {
            if (c.unicode() < 0x20 || c.unicode() == 0x7f)
                return std::nullopt;
        }
        segments.append(segment);
    }
    return segments;
}

QByteArray cookieValue(const HeaderView &headers, const QByteArray &name)
{
    const QList<QByteArray> cookies = headers.value("cookie").split(';');
    for (const QByteArray &cookie : cookies) {
        const QByteArray trimmed = cookie.trimmed();
        if (trimmed.startsWith(QByteArray(name + '=')))
            return trimmed.mid(name.size() + 1);
    }
    return QByteArray();
}

bool isRunId(const QString &id)
{
    return !QUuid::fromString(id).isNull();
}

QJsonObject runUrls(const QString &id)
{
    const QString run = u"/admin/run/"_s + id;
    return {{u"self"_s, run},
            {u"log"_s, QString(run + u"/log"_s)},
            {u"cancel"_s, QString(run + u"/cancel"_s)},
            {u"stream"_s, QString(u"/ws/task/"_s + id)}};
}

QJsonObject runJson(const Run &run)
{
    QJsonObject o = run.toJson();
    o.insert(u"urls"_s, runUrls(run.id));
    return o;
}

// The arguments of a start: a JSON object or a urlencoded form (requestbody.h).
QJsonObject jsonBody(const QHttpServerRequest &request)
{
    return decodeArgumentsBody(request.value("Content-Type"), request.body());
}

int intParam(const QUrlQuery &query, const QString &name, int fallback, int min, int max, FieldErrors *errors)
{
    if (!query.hasQueryItem(name))
        return fallback;
    bool ok = false;
    const int value = query.queryItemValue(name).toInt(&ok);
    if (!ok || value < min || value > max) {
        errors->append({name, u"expected a whole number from %1 to %2"_s.arg(min).arg(max)});
        return fallback;
    }
    return value;
}

// The HTTP side: every request goes through Private::handle(), which knows the route table.
class HttpFrontEnd final : public QAbstractHttpServer
{
public:
    using Handle = std::function<bool(const QHttpServerRequest &, QTcpSocket *)>;
    using Missing = std::function<void(const QHttpServerRequest &, QTcpSocket *)>;
    HttpFrontEnd(Handle handle, Missing missing)
        : m_handle(std::move(handle)), m_missing(std::move(missing)) {}

    using QAbstractHttpServer::makeResponder;

private:
    bool handleRequest(const QHttpServerRequest &request, QTcpSocket *socket) override
    {
        return m_handle(request, socket);
    }
    void missingHandler(const QHttpServerRequest &request, QTcpSocket *socket) override
    {
        m_missing(request, socket);
    }

    const Handle m_handle;
    const Missing m_missing;
};

} // namespace

class AdminServer::Private
{
public:
    Private(AdminServer *q, TaskEngine *engine, IRunStore *store, const ServerSettings &settings)
        : m_q(q), m_engine(engine), m_store(store), m_settings(settings),
          m_http([this](const QHttpServerRequest &r, QTcpSocket *s) { return handle(r, s); },
                 [this](const QHttpServerRequest &r, QTcpSocket *s) { missing(r, s); }),
          m_follower(engine, store), m_metrics(engine)
    {
        addRoutes();
        QObject::connect(&m_http, &QAbstractHttpServer::newWebSocketConnection, &m_http,
                         [this] { acceptWebSockets(); });
        // Direct, on the registry's thread (it is re-emitted there when a change is made on
        // another): a list cached before the change is not answered after this.
        QObject::connect(m_engine->registry(), &TaskRegistry::changed, &m_http,
                         [generation = m_registryGeneration] { ++*generation; }, Qt::DirectConnection);
    }

    bool handle(const QHttpServerRequest &request, QTcpSocket *socket);
    void missing(const QHttpServerRequest &request, QTcpSocket *socket);

    AdminServer *m_q;
    TaskEngine *m_engine;
    IRunStore *m_store;
    ServerSettings m_settings;
    AdminAuth m_auth;
    HttpFrontEnd m_http;
    QTcpServer *m_tcp = nullptr;
    RunFollower m_follower;
    ServerMetrics m_metrics;
    Routes m_routes;
    std::optional<ApiError> m_refusedUpgrade;
    QList<QByteArray> m_hosts; // the Host values that name this server, made at the first request
    /*! The encoded answers of GET /admin/task by filter, valid while the registry's
     *  generation is m_taskListGeneration: the list is answered without encoding it again. */
    QHash<QString, QByteArray> m_taskLists;
    quint64 m_taskListGeneration = 0;
    std::shared_ptr<std::atomic<quint64>> m_registryGeneration = std::make_shared<std::atomic<quint64>>(1);

private:
    void addRoutes();
    Routes::Match route(const QHttpServerRequest &request, const HeaderView &headers, QString *pattern = nullptr);
    void checkOrigin(const HeaderView &headers) const;
    void authenticate(const HeaderView &headers, bool changesState);
    void acceptWebSockets();

    void health(const Call &call);
    void asset(const Call &call);
    void upload(const Call &call);
    /*!
     * Stores \a data as an upload named after \a name (made harmless), 0600 in a 0700 folder
     * of its own under uploadsDir(); returns its path. Throws ApiError when it cannot.
     */
    QString storeUpload(QString name, const QByteArray &data) const;
    /*!
     * The arguments of a start or rerun: JSON, a urlencoded form, or a multipart form whose
     * files are stored as uploads and given to the run by their paths.
     */
    QJsonObject arguments(const QHttpServerRequest &request) const;
    /*! Where uploaded files are kept: DATA_DIR/uploads. */
    QString uploadsDir() const { return m_settings.dataDir + u"/uploads"_s; }
    /*! A browser gives files by uploading them: a File argument must name an upload. */
    void checkBrowserFiles(const QString &key, const QJsonObject &args) const;
    /*! Answers a browser (Accept prefers HTML) with the page \a name; false for API clients. */
    bool servePage(const Call &call, const QString &name) const;
    void metrics(const Call &call);
    void login(const Call &call);
    void logout(const Call &call);
    void listTasks(const Call &call);
    void showTask(const Call &call);
    void startTask(const Call &call, bool wait);
    void listRuns(const Call &call);
    void showRun(const Call &call);
    void cancelRun(const Call &call);
    void runLog(const Call &call);
    void exportRun(const Call &call);
    using LogEncoder = std::function<QByteArray(const LogLines &)>;
    /*! Answers with \a head of the stored run, its whole log through \a encode page by
     *  page, then \a tail; streamed, so any length takes bounded memory. */
    void streamRun(const Call &call, const QByteArray &contentType, const Headers &headers,
                   std::function<QByteArray(const Run &)> head, LogEncoder encode, const QByteArray &tail);
    void rerun(const Call &call);
    /*! Starts \a key; the run belongs to the trace of \a traceParent (a traceparent header;
     *  a new trace when it is empty or malformed), which the answer returns. */
    void start(const HttpReplyPtr &reply, const QString &key, QJsonObject args, bool wait,
               const QByteArray &traceParent);
    /*! The run as the API shows it: with its URLs, and its trace when this server started it. */
    QJsonObject runWithTrace(const Run &run) const;
    void rememberTrace(const QString &runId, const QByteArray &traceParent);
    /*! The traceparent of the runs this server started, the latest kMaxTraces. */
    QHash<QString, QByteArray> m_traces;
    QQueue<QString> m_traceOrder;
    static constexpr qsizetype kMaxTraces = 10000;
    void readLogPage(const HttpReplyPtr &reply, const QString &id, qint64 fromLine,
                     const LogEncoder &encode, const QByteArray &tail);
};

void AdminServer::Private::addRoutes()
{
    auto bind = [this](void (Private::*method)(const Call &)) {
        return [this, method](const Call &call) { (this->*method)(call); };
    };
    m_routes.add({"GET", u"/healthz"_s, true, false, bind(&Private::health)});
    m_routes.add({"GET", u"/login"_s, true, false, bind(&Private::login)});
    m_routes.add({"POST", u"/logout"_s, false, false, bind(&Private::logout)});
    m_routes.add({"GET", u"/metrics"_s, false, false, bind(&Private::metrics)});
    // The pages' scripts, styles and icons: public, so the log-in page has its style too.
    m_routes.add({"GET", u"/admin/assets/{name}"_s, true, false, bind(&Private::asset)});
    m_routes.add({"GET", u"/admin/assets/icons/{name}"_s, true, false, bind(&Private::asset)});
    m_routes.add({"GET", u"/admin/task"_s, false, false, bind(&Private::listTasks)});
    m_routes.add({"GET", u"/admin/task/{key}"_s, false, false, bind(&Private::showTask)});
    m_routes.add({"POST", u"/admin/task/{key}/start"_s, false, false,
                  [this](const Call &call) { startTask(call, false); }});
    m_routes.add({"POST", u"/admin/task/{key}/run"_s, false, false,
                  [this](const Call &call) { startTask(call, true); }});
    m_routes.add({"POST", u"/admin/upload"_s, false, false, bind(&Private::upload)});
    m_routes.add({"GET", u"/admin/run"_s, false, false, bind(&Private::listRuns)});
    m_routes.add({"GET", u"/admin/run/{id}"_s, false, false, bind(&Private::showRun)});
    m_routes.add({"POST", u"/admin/run/{id}/cancel"_s, false, false, bind(&Private::cancelRun)});
    m_routes.add({"GET", u"/admin/run/{id}/log"_s, false, false, bind(&Private::runLog)});
    m_routes.add({"GET", u"/admin/run/{id}/export"_s, false, false, bind(&Private::exportRun)});
    m_routes.add({"POST", u"/admin/run/{id}/rerun"_s, false, false, bind(&Private::rerun)});
    // Answered by the WebSocket upgrade; a plain GET is told to upgrade.
    m_routes.add({"GET", u"/ws/task/{runId}"_s, false, true, [](const Call &) {
                      fail(ApiError::Kind::UpgradeRequired, u"this is a WebSocket endpoint"_s);
                  }});
}

Routes::Match AdminServer::Private::route(const QHttpServerRequest &request, const HeaderView &headers,
                                          QString *pattern)
{
    // DNS rebinding: a page of another site that resolves its name to us sends its own Host.
    const QByteArray host = headers.value("host").toLower();
    const QByteArray port = ':' + QByteArray::number(m_q->port());
    if (m_hosts.isEmpty()) {
        m_hosts = {QByteArray("localhost" + port), QByteArray("127.0.0.1" + port), QByteArray("[::1]" + port),
                   formatListenAddress(m_settings.address, m_q->port()).toLower().toUtf8()};
    }
    const bool anyAddress = m_settings.address == QHostAddress::Any
        || m_settings.address == QHostAddress::AnyIPv4 || m_settings.address == QHostAddress::AnyIPv6;
    bool hostOk = m_hosts.contains(host);
    if (!hostOk && anyAddress && host.endsWith(port)) {
        QByteArray name = host.chopped(port.size());
        if (name.startsWith('[') && name.endsWith(']'))
            name = name.mid(1, name.size() - 2);
        hostOk = !QHostAddress(QString::fromLatin1(name)).isNull();
    }
    if (!hostOk)
        fail(ApiError::Kind::Forbidden, u"the Host header must name this server's address"_s);

    bool lengthOk = true;
    const QByteArray lengthText = headers.value("content-length");
    const qint64 length = lengthText.isEmpty() ? 0 : lengthText.trimmed().toLongLong(&lengthOk);
    if (!lengthOk || length < 0)
        fail(ApiError::Kind::BadRequest, u"invalid Content-Length"_s);
    // The guard refused most of these before the body was read; this is the last word.
    if (length > m_settings.maxBodyBytes || request.body().size() > m_settings.maxBodyBytes) {
        const qint64 limit = RequestGuard::carriesFiles(request.url().toEncoded(QUrl::RemoveScheme | QUrl::RemoveAuthority),
                                                        headers.value("content-type"))
            ? std::max(m_settings.maxUploadBytes, m_settings.maxBodyBytes) : m_settings.maxBodyBytes;
        if (length > limit || request.body().size() > limit)
            throw ApiError{ApiError::Kind::PayloadTooLarge,
                           u"the body is over the limit of %1 bytes"_s.arg(limit), {}, {}};
    }

    checkOrigin(headers);

    const std::optional<QStringList> segments = pathSegments(request.url());
    const QByteArray method = methodName(request.method());
    Routes::Match match = segments ? m_routes.match(method, *segments) : Routes::Match();
    if (match.allow.isEmpty())
        fail(ApiError::Kind::NotFound, u"no such page"_s);
    if (!match.route)
        throw ApiError{ApiError::Kind::MethodNotAllowed,
                       u"%1 is not allowed here"_s.arg(QString::fromLatin1(method)), {}, match.allow};
    if (pattern)
        *pattern = match.route->pattern;
    if (match.route->webSocket && !m_settings.webSocketEnabled)
        fail(ApiError::Kind::NotFound, u"live streaming is turned off (TASK_WEBSOCKET_ENABLED)"_s);
    if (!match.route->isPublic)
        authenticate(headers, method != "GET" && method != "HEAD");
    return match;
}

void AdminServer::Private::checkOrigin(const HeaderView &headers) const
{
    const QByteArray origin = headers.value("origin");
    if (!origin.isEmpty() && origin != "http://" + headers.value("host").toLower())
        fail(ApiError::Kind::Forbidden, u"requests from another origin are refused"_s);
    const QByteArray site = headers.value("sec-fetch-site");
    if (!site.isEmpty() && site != "same-origin" && site != "none")
        fail(ApiError::Kind::Forbidden, u"cross-site requests are refused"_s);
}

void AdminServer::Private::authenticate(const HeaderView &headers, bool changesState)
{
    const QByteArray authorization = headers.value("authorization");
    if (!authorization.isEmpty()) {
        if (authorization.startsWith("Bearer ") && m_auth.isToken(authorization.mid(7).trimmed()))
            return;
        fail(ApiError::Kind::Unauthorized, u"the bearer token is not this server's"_s);
    }
    const QByteArray session = cookieValue(headers, SessionCookie);
    const QByteArray csrf = session.isEmpty() ? QByteArray() : m_auth.useSession(session);
    if (csrf.isEmpty() && !session.isEmpty())
        fail(ApiError::Kind::Unauthorized, u"the session has expired or ended; log in again"_s);
    if (csrf.isEmpty())
        fail(ApiError::Kind::Unauthorized,
             u"send Authorization: Bearer TOKEN (the token is in the data directory's "
             u"admin-token file) or log in through the link taskdeck serve prints"_s);
    if (changesState && !AdminAuth::constantTimeEquals(headers.value("x-csrf-token"), csrf))
        fail(ApiError::Kind::Forbidden, u"missing or wrong X-CSRF-Token"_s);
}

bool AdminServer::Private::handle(const QHttpServerRequest &request, QTcpSocket *socket)
{
    const HeaderView headers(request);
    const bool upgrade = headers.value("upgrade").toLower() == "websocket";
    if (upgrade) {
        // Returning false has the base class call missing(), which sends the refusal and
        // closes the connection; true hands the socket to the WebSocket server.
        try {
            const Routes::Match match = route(request, headers);
            if (!match.route->webSocket)
                fail(ApiError::Kind::BadRequest, u"no WebSocket here"_s);
            return true;
        } catch (const ApiError &e) {
            m_refusedUpgrade = e;
            return false;
        }
    }

    const HttpReplyPtr reply = std::make_shared<HttpReply>(HttpFrontEnd::makeResponder(request, socket),
                                                   request.method() == QHttpServerRequest::Method::Head,
                                                   headers.value("connection").toLower().contains("close"));
    // Counted when it is sent, whenever that is, under its route's pattern.
    reply->onSent([this](const QString &route, int status) { m_metrics.answered(route, status); });
    // The one place errors become answers.
    QString pattern;
    try {
        const Routes::Match match = route(request, headers, &pattern);
        reply->setRoute(pattern);
        match.route->handler(Call{request, headers, match.params, reply});
    } catch (const ApiError &e) {
        if (!pattern.isEmpty())
            reply->setRoute(pattern);
        // A browser that is not logged in (or followed a stale link) gets a page telling
        // how to log in, not raw JSON.
        const bool readOnly = request.method() == QHttpServerRequest::Method::Get
            || request.method() == QHttpServerRequest::Method::Head;
        const WebAssets::Asset *page = WebAssets::find(u"pages/login.html"_s);
        if (e.kind == ApiError::Kind::Unauthorized && readOnly && page
            && WebAssets::prefersHtml(headers.value("accept"))) {
            reply->send(e.status(), page->contentType, page->body);
        } else {
            reply->error(e);
        }
    } catch (const std::exception &) {
        reply->error({ApiError::Kind::Internal, u"internal error"_s, {}, {}});
    }
    return true;
}

void AdminServer::Private::missing(const QHttpServerRequest &request, QTcpSocket *socket)
{
    const bool refusedUpgrade = m_refusedUpgrade.has_value();
    {
        HttpReply reply(HttpFrontEnd::makeResponder(request, socket), false);
        reply.error(m_refusedUpgrade.value_or(ApiError{ApiError::Kind::NotFound, u"no such page"_s, {}, {}}));
    }
    m_refusedUpgrade.reset();
    // The connection's guard stopped watching it at the upgrade: it ends here.
    if (refusedUpgrade && socket)
        socket->disconnectFromHost();
}

void AdminServer::Private::acceptWebSockets()
{
    while (m_http.hasPendingWebSocketConnections()) {
        std::unique_ptr<QWebSocket> socket = m_http.nextPendingWebSocketConnection();
        const QUrl url = socket->requestUrl();
        const QString runId = url.path().section(u'/', -1);
        bool ok = true;
        const QUrlQuery query(url);
        const qint64 after = query.hasQueryItem(u"after"_s)
            ? query.queryItemValue(u"after"_s).toLongLong(&ok) : -1;
        bool tailOk = true;
        const qint64 tail = query.hasQueryItem(u"tail"_s) ? query.queryItemValue(u"tail"_s).toLongLong(&tailOk) : 0;
        tailOk = tailOk && tail >= 0 && tail <= RunStream::kMaxTailLines;
        if (!isRunId(runId) || !ok || after < -1 || !tailOk) {
            const QString reason = !ok || after < -1 ? u"after must be a sequence number"_s
                : !tailOk ? u"tail must be a number of lines from 0 to %1"_s.arg(RunStream::kMaxTailLines)
                          : u"unknown run"_s;
            // Closed from the event loop, as RunStream does: QtWebSockets still has the
            // socket's data to look at (a queued call), which on a socket closed during the
            // hand-over warns "QIODevice::peek: device not open".
            QWebSocket *refused = socket.release();
            QMetaObject::invokeMethod(refused, [refused, reason] {
                refused->close(QWebSocketProtocol::CloseCodePolicyViolated, reason);
                refused->deleteLater();
            }, Qt::QueuedConnection);
            continue;
        }
        auto *stream = new RunStream(std::move(socket), m_settings.maxPendingSocketBytes, m_q);
        m_metrics.webSocketOpened();
        QObject::connect(stream, &QObject::destroyed, &m_metrics, [this] { m_metrics.webSocketClosed(); });
        stream->start(&m_follower, runId, after, m_store, tail);
    }
}

void AdminServer::Private::health(const Call &call)
{
    call.reply->json(200, {{u"status"_s, u"ok"_s},
                           {u"running"_s, m_engine->runningCount()},
                           {u"queued"_s, m_engine->queuedCount()},
                           {u"history"_s, m_store && m_store->isAvailable()}});
}

void AdminServer::Private::asset(const Call &call)
{
    const bool icon = call.request.url().path().startsWith(u"/admin/assets/icons/"_s);
    const QString path = (icon ? u"icons/"_s : u"assets/"_s) + call.params.at(0);
    const WebAssets::Asset *found = WebAssets::find(path);
    if (!found)
        fail(ApiError::Kind::NotFound, u"no such file"_s);
    // Revalidated on each use: cheap (304) and never stale after an upgrade.
    const Headers headers{{"ETag", found->etag}, {"Cache-Control", "no-cache"}};
    const QList<QByteArray> tags = call.request.value("If-None-Match").split(',');
    for (const QByteArray &tag : tags) {
        if (tag.trimmed() == found->etag || tag.trimmed() == "*")
            return call.reply->send(304, found->contentType, QByteArray(), headers);
    }
    call.reply->send(200, found->contentType, found->body, headers);
}

bool AdminServer::Private::servePage(const Call &call, const QString &name) const
{
    // ?format=json asks for the JSON whatever the Accept header says.
    if (!WebAssets::prefersHtml(call.headers.value("accept"))
        || call.request.query().queryItemValue(u"format"_s) == u"json")
        return false;
    const WebAssets::Asset *page = WebAssets::find(u"pages/"_s + name);
    if (!page)
        return false;
    call.reply->send(200, page->contentType, page->body, {{"Vary", "Accept"}});
    return true;
}

void AdminServer::Private::metrics(const Call &call)
{
    call.reply->send(200, "text/plain; version=0.0.4; charset=utf-8", m_metrics.render());
}

void AdminServer::Private::login(const Call &call)
{
    // Guessing the token through the login link is slowed down per client address.
    const QString client = call.request.remoteAddress().toString();
    if (!m_auth.mayTryLogin(client))
        fail(ApiError::Kind::TooManyRequests, u"too many failed logins; try again in a minute"_s);
    const QUrlQuery query = call.request.query();
    const bool valid = query.hasQueryItem(u"code"_s)
        ? m_auth.consumeLoginCode(query.queryItemValue(u"code"_s).toUtf8())
        : m_auth.isToken(query.queryItemValue(u"token"_s).toUtf8());
    if (!valid) {
        m_auth.loginFailed(client);
        fail(ApiError::Kind::Unauthorized, u"the login link is not valid"_s);
    }
    const AdminAuth::Session session = m_auth.openSession();
    call.reply->send(303, "text/plain", "see /admin/task\n",
                     {{"Location", "/admin/task"},
                      {"Set-Cookie", QByteArray(SessionCookie + '=' + session.id + "; Path=/; HttpOnly; SameSite=Strict")},
                      // Read by the pages' scripts and sent back as X-CSRF-Token.
                      {"Set-Cookie", QByteArray(CsrfCookie + '=' + session.csrf + "; Path=/; SameSite=Strict")}});
}

void AdminServer::Private::logout(const Call &call)
{
    m_auth.closeSession(cookieValue(call.headers, SessionCookie));
    call.reply->json(200, {{u"loggedOut"_s, true}},
                     {{"Set-Cookie", QByteArray(SessionCookie + "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict")},
                      {"Set-Cookie", QByteArray(CsrfCookie + "=; Path=/; Max-Age=0; SameSite=Strict")}});
}

void AdminServer::Private::listTasks(const Call &call)
{
    if (servePage(call, u"tasks.html"_s))
        return;
    // The same list is asked for again and again (pages, scripts): it is encoded once per
    // change of the registry and query.
    const quint64 generation = m_registryGeneration->load();
    if (generation != m_taskListGeneration || m_taskLists.size() > 64) {
        m_taskLists.clear();
        m_taskListGeneration = generation;
    }
    const QString cacheKey = call.request.url().query(QUrl::FullyEncoded);
    auto cached = m_taskLists.constFind(cacheKey);
    if (cached == m_taskLists.cend()) {
        const QUrlQuery query = call.request.query();
        const QList<TaskPtr> tasks = m_engine->registry()->search(query.queryItemValue(u"q"_s, QUrl::FullyDecoded),
                                                                  query.queryItemValue(u"category"_s, QUrl::FullyDecoded),
                                                                  query.queryItemValue(u"tag"_s, QUrl::FullyDecoded));
        QJsonArray list;
        for (const TaskPtr &task : tasks)
            list.append(task->toJson());
        const QJsonObject answer{{u"tasks"_s, list}, {u"count"_s, list.size()}};
        cached = m_taskLists.insert(cacheKey, QJsonDocument(answer).toJson(QJsonDocument::Compact));
    }
    call.reply->send(200, "application/json", cached.value());
}

void AdminServer::Private::showTask(const Call &call)
{
    if (servePage(call, u"task.html"_s))
        return;
    const TaskPtr task = m_engine->registry()->find(call.params.at(0));
    if (!task)
        fail(ApiError::Kind::NotFound, u"no task \"%1\""_s.arg(call.params.at(0)));
    QJsonObject o = task->toJson();
    o.insert(u"schema"_s, fieldsToJsonSchema(task->fields));
    call.reply->json(200, o);
}

void AdminServer::Private::startTask(const Call &call, bool wait)
{
    const QJsonObject args = arguments(call.request);
    // Authenticated, and without a bearer token: a browser session.
    if (call.request.value("Authorization").isEmpty())
        checkBrowserFiles(call.params.at(0), args);
    start(call.reply, call.params.at(0), args, wait, call.request.value("traceparent"));
}

void AdminServer::Private::checkBrowserFiles(const QString &key, const QJsonObject &args) const
{
    const TaskPtr task = m_engine->registry()->find(key);
    if (!task)
        return; // the start says so
    const QString root = QFileInfo(uploadsDir()).canonicalFilePath();
    FieldErrors errors;
    for (const Field &field : task->fields) {
        const QJsonValue value = args.value(field.key);
        if (field.type != FieldType::File || !value.isString() || value.toString().isEmpty())
            continue;
        const QString path = QFileInfo(value.toString()).canonicalFilePath();
        if (root.isEmpty() || path.isEmpty() || !path.startsWith(root + u'/'))
            errors.append({field.key, u"upload the file with the form; a browser cannot name a path on "
                                      u"the server"_s});
    }
    if (!errors.isEmpty())
        fail(ApiError::Kind::BadRequest, u"invalid arguments: "_s + formatFieldErrors(errors), errors);
}

void AdminServer::Private::upload(const Call &call)
{
    // The name is kept for the task's sake (an extension may matter), made harmless.
    const QString path = storeUpload(call.request.query().queryItemValue(u"name"_s, QUrl::FullyDecoded),
                                     call.request.body());
    call.reply->json(201, {{u"path"_s, path}, {u"name"_s, QFileInfo(path).fileName()},
                           {u"size"_s, call.request.body().size()}});
}

QString AdminServer::Private::storeUpload(QString name, const QByteArray &data) const
{
    name = name.section(u'/', -1).section(u'\\', -1).left(100);
    for (QChar &c : name) {
        if (!(c.isLetterOrNumber() && c.unicode() < 0x80) && c != u'.' && c != u'-' && c != u'_')
            c = u'_';
    }
    while (name.startsWith(u'.'))
        name.remove(0, 1);
    if (name.isEmpty())
        name = u"upload"_s;
    const QString dir = uploadsDir() + u'/' + QUuid::createUuid().toString(QUuid::WithoutBraces);
    const QFileDevice::Permissions owner = QFileDevice::ReadOwner | QFileDevice::WriteOwner | QFileDevice::ExeOwner;
    if (!QDir().mkpath(dir) || !QFile::setPermissions(uploadsDir(), owner) || !QFile::setPermissions(dir, owner))
        fail(ApiError::Kind::Internal, u"the upload cannot be stored"_s);
    QFile file(dir + u'/' + name);
    if (!file.open(QIODevice::WriteOnly | QIODevice::NewOnly, QFileDevice::ReadOwner | QFileDevice::WriteOwner)
        || file.write(data) != data.size() || !file.flush()) {
        file.remove();
        fail(ApiError::Kind::Internal, u"the upload cannot be stored"_s);
    }
    file.close();
    return QFileInfo(file).canonicalFilePath();
}

QJsonObject AdminServer::Private::arguments(const QHttpServerRequest &request) const
{
    const QByteArray type = request.value("Content-Type");
    if (type.split(';').constFirst().trimmed().toLower() != "multipart/form-data")
        return jsonBody(request);
    QJsonObject args;
    const QList<FormPart> parts = decodeMultipart(type, request.body());
    for (const FormPart &part : parts) {
        if (part.isFile && part.fileName.isEmpty() && part.data.isEmpty())
            continue; // a file input left empty
        addFormValue(args, part.name, part.isFile ? QJsonValue(storeUpload(part.fileName, part.data))
                                                  : QJsonValue(QString::fromUtf8(part.data)));
    }
    return args;
}

void AdminServer::Private::start(const HttpReplyPtr &reply, const QString &key, QJsonObject args, bool wait,
                                 const QByteArray &traceParent)
{
    // A dangerous task runs only when the caller repeats its key: a deliberate act that a
    // replayed or copied generic "true" cannot stand in for.
    const QJsonValue confirm = args.take(u"confirm"_s);
    RunOptions options;
    options.confirmed = confirm.isString() && confirm.toString() == key;
    // The run is a span of the caller's trace (a new trace when the caller has none).
    const std::optional<TraceParent> caller = TraceParent::parse(traceParent);
    const TraceParent trace = caller ? caller->child() : TraceParent::make();
    options.traceParent = QString::fromLatin1(trace.text());
    const StartResult started = m_engine->start(key, args, options);
    if (!started.ok())
        throw ApiError::fromStartError(started.error);
    rememberTrace(started.runId, trace.text());
    const Headers traceHeader{{"traceparent", trace.text()}};
    if (!wait) {
        reply->json(202, {{u"id"_s, started.runId}, {u"status"_s, u"queued"_s},
                          {u"task"_s, key}, {u"urls"_s, runUrls(started.runId)},
                          {u"traceId"_s, QString::fromLatin1(trace.traceId)},
                          {u"traceparent"_s, QString::fromLatin1(trace.text())}},
                    traceHeader);
        return;
    }
    // The engine emits runFinished from the event loop only, so connecting now misses
    // nothing. The run goes on if the client leaves.
    auto *waiter = new QObject(&m_http);
    QObject::connect(m_engine, &TaskEngine::runFinished, waiter,
                     [this, reply, id = started.runId, waiter, traceHeader](const Run &run) {
                         if (run.id != id)
                             return;
                         reply->json(200, runWithTrace(run), traceHeader);
                         waiter->deleteLater();
                     });
}

QJsonObject AdminServer::Private::runWithTrace(const Run &run) const
{
    QJsonObject o = runJson(run);
    const QByteArray trace = m_traces.value(run.id);
    if (!trace.isEmpty()) {
        o.insert(u"traceId"_s, QString::fromLatin1(trace.mid(3, 32)));
        o.insert(u"traceparent"_s, QString::fromLatin1(trace));
    } else if (!run.traceId.isEmpty()) {
        o.insert(u"traceId"_s, run.traceId); // started by another caller of the engine
    }
    return o;
}

void AdminServer::Private::rememberTrace(const QString &runId, const QByteArray &traceParent)
{
    m_traces.insert(runId, traceParent);
    m_traceOrder.enqueue(runId);
    while (m_traceOrder.size() > kMaxTraces)
        m_traces.remove(m_traceOrder.dequeue());
}

void AdminServer::Private::listRuns(const Call &call)
{
    if (servePage(call, u"runs.html"_s))
        return;
    if (!m_store)
        fail(ApiError::Kind::Unavailable, u"this server keeps no history"_s);
    const QUrlQuery query = call.request.query();
    FieldErrors errors;
    RunQuery runQuery;
    runQuery.task = query.queryItemValue(u"task"_s, QUrl::FullyDecoded);
    if (query.hasQueryItem(u"status"_s)) {
        runQuery.status = runStatusFromName(query.queryItemValue(u"status"_s));
        if (!runQuery.status)
            errors.append({u"status"_s, u"expected one of "_s + runStatusNames().join(u", "_s)});
    }
    runQuery.limit = intParam(query, u"limit"_s, 50, 1, 1000, &errors);
    runQuery.offset = intParam(query, u"offset"_s, 0, 0, std::numeric_limits<int>::max(), &errors);
    if (!errors.isEmpty())
        fail(ApiError::Kind::BadRequest, u"invalid query: "_s + formatFieldErrors(errors), errors);
    detail::whenDone(&m_http, m_store->findRunsAsync(runQuery),
                     [this, reply = call.reply, runQuery](const RunPage &page) {
        QJsonArray runs;
        for (const Run &run : page.runs)
            runs.append(runWithTrace(run));
        reply->json(200, {{u"runs"_s, runs}, {u"total"_s, page.total},
                          {u"limit"_s, runQuery.limit}, {u"offset"_s, runQuery.offset}});
    });
}

void AdminServer::Private::showRun(const Call &call)
{
    if (servePage(call, u"run.html"_s))
        return;
    const QString id = call.params.at(0);
    if (!isRunId(id))
        fail(ApiError::Kind::NotFound, u"no run \"%1\""_s.arg(id));
    if (const std::optional<Run> run = m_engine->snapshot(id))
        return call.reply->json(200, runWithTrace(*run));
    if (!m_store)
        fail(ApiError::Kind::NotFound, u"no run \"%1\""_s.arg(id));
    detail::whenDone(&m_http, m_store->findRunAsync(id),
                     [this, reply = call.reply, id](const std::optional<Run> &run) {
        if (run)
            reply->json(200, runWithTrace(*run));
        else
            reply->error({ApiError::Kind::NotFound, u"no run \"%1\""_s.arg(id), {}, {}});
    });
}

void AdminServer::Private::cancelRun(const Call &call)
{
    const QString id = call.params.at(0);
    if (!isRunId(id))
        fail(ApiError::Kind::NotFound, u"no run \"%1\""_s.arg(id));
    if (m_engine->cancel(id))
        return call.reply->json(202, {{u"id"_s, id}, {u"canceling"_s, true}});
    if (const std::optional<Run> run = m_engine->snapshot(id); run && run->isFinished())
        fail(ApiError::Kind::Conflict, u"run %1 has finished already"_s.arg(id));
    if (!m_store)
        fail(ApiError::Kind::NotFound, u"no queued or running run \"%1\""_s.arg(id));
    // Not a run of this process: one in the shared queue is canceled there, or by its worker.
    detail::whenDone(&m_http, m_store->requestCancelAsync(id), [reply = call.reply, id](const CancelRequest &asked) {
        switch (asked.outcome) {
        case CancelRequest::Outcome::Canceled:
        case CancelRequest::Outcome::Requested:
            return reply->json(202, {{u"id"_s, id}, {u"canceling"_s, true}});
        case CancelRequest::Outcome::Finished:
            return reply->error({ApiError::Kind::Conflict, u"run %1 has finished already"_s.arg(id), {}, {}});
        case CancelRequest::Outcome::Elsewhere:
            return reply->error({ApiError::Kind::Conflict,
                                 u"run %1 runs in another process (%2), which takes no cancel from here: cancel it "
                                 u"there"_s.arg(id, RunOwner::describe(asked.owner)),
                                 {}, {}});
        case CancelRequest::Outcome::Unknown:
            return reply->error({ApiError::Kind::NotFound, u"no queued or running run \"%1\""_s.arg(id), {}, {}});
        case CancelRequest::Outcome::Failed:
            break;
        }
        reply->error({ApiError::Kind::Unavailable, u"cannot cancel run %1: %2"_s.arg(id, asked.error), {}, {}});
    });
}

void AdminServer::Private::runLog(const Call &call)
{
    streamRun(call, "text/plain; charset=utf-8", {}, [](const Run &) { return QByteArray(); },
              [](const LogLines &lines) {
                  QByteArray text;
                  for (const LogLine &line : lines)
                      text += line.text.toUtf8() + '\n';
                  return text;
              },
              QByteArray());
}

void AdminServer::Private::exportRun(const Call &call)
{
    const QString format = call.request.query().queryItemValue(u"format"_s);
    const QString id = call.params.at(0);
    auto encoder = std::make_shared<LogLineEncoder>();
    if (format == u"csv") {
        streamRun(call, "text/csv; charset=utf-8",
                  {{"Content-Disposition", "attachment; filename=\"run-" + id.toLatin1() + ".csv\""}},
                  [](const Run &) { return QByteArray("n,time,stream,text\r\n"); },
                  [encoder](const LogLines &lines) {
                      QByteArray out;
                      for (const LogLine &line : lines)
                          encoder->appendCsv(out, line);
                      return out;
                  },
                  QByteArray());
        return;
    }
    if (!format.isEmpty() && format != u"json")
        fail(ApiError::Kind::BadRequest, u"format must be json or csv"_s,
             {{u"format"_s, u"expected json or csv"_s}});
    // The run's object, then its log as an array that is written a page at a time.
    auto first = std::make_shared<bool>(true);
    streamRun(call, "application/json",
              {{"Content-Disposition", "attachment; filename=\"run-" + id.toLatin1() + ".json\""}},
              [](const Run &run) -> QByteArray {
                  QByteArray head = QJsonDocument(run.toJson()).toJson(QJsonDocument::Compact);
                  head.chop(1); // the closing brace: the log goes in first
                  return head + (head.endsWith('{') ? "\"log\":[" : ",\"log\":[");
              },
              [encoder, first](const LogLines &lines) {
                  QByteArray out;
                  for (const LogLine &line : lines) {
                      if (!*first)
                          out += ',';
                      *first = false;
                      encoder->appendJson(out, line);
                  }
                  return out;
              },
              QByteArray("]}"));
}

void AdminServer::Private::streamRun(const Call &call, const QByteArray &contentType, const Headers &headers,
                                     std::function<QByteArray(const Run &)> head, LogEncoder encode,
                                     const QByteArray &tail)
{
    const QString id = call.params.at(0);
    if (!isRunId(id))
        fail(ApiError::Kind::NotFound, u"no run \"%1\""_s.arg(id));
    if (!m_store)
        fail(ApiError::Kind::Unavailable, u"this server keeps no history"_s);
    detail::whenDone(&m_http, m_store->findRunAsync(id),
                     [=, this, reply = call.reply](const std::optional<Run> &run) {
        if (!run)
            return reply->error({ApiError::Kind::NotFound, u"no run \"%1\""_s.arg(id), {}, {}});
        if (!reply->beginStream(contentType, headers))
            return;
        reply->chunk(head(*run));
        readLogPage(reply, id, 1, encode, tail);
    });
}

void AdminServer::Private::rerun(const Call &call)
{
    const QString id = call.params.at(0);
    if (!isRunId(id))
        fail(ApiError::Kind::NotFound, u"no run \"%1\""_s.arg(id));
    if (!m_store)
        fail(ApiError::Kind::Unavailable, u"this server keeps no history"_s);
    const QJsonObject given = arguments(call.request);
    const bool browser = call.request.value("Authorization").isEmpty();
    const QByteArray traceParent = call.request.value("traceparent");
    detail::whenDone(&m_http, m_store->findRunAsync(id),
                     [this, reply = call.reply, id, given, browser, traceParent](const std::optional<Run> &run) {
        if (!run)
            return reply->error({ApiError::Kind::NotFound, u"no run \"%1\""_s.arg(id), {}, {}});
        // The history keeps secrets redacted: a stored placeholder must not be sent as the value.
        FieldErrors missing;
        if (const TaskPtr task = m_engine->registry()->find(run->task)) {
            for (const Field &field : task->fields) {
                if (field.type == FieldType::Secret && run->args.contains(field.key) && !given.contains(field.key))
                    missing.append({field.key, u"secret values are not stored; send it again"_s});
            }
        }
        if (!missing.isEmpty())
            return reply->error({ApiError::Kind::BadRequest, u"the rerun needs its secret arguments again"_s,
                                 missing, {}});
        QJsonObject args = run->args;
        for (auto it = given.begin(); it != given.end(); ++it)
            args.insert(it.key(), it.value());
        try {
            if (browser)
                checkBrowserFiles(run->task, given);
            start(reply, run->task, args, false, traceParent);
        } catch (const ApiError &e) {
            reply->error(e);
        }
    });
}

void AdminServer::Private::readLogPage(const HttpReplyPtr &reply, const QString &id, qint64 fromLine,
                                       const LogEncoder &encode, const QByteArray &tail)
{
    constexpr int PageLines = 1000;
    detail::whenDone(&m_http, m_store->readLogAsync(id, fromLine, PageLines), [=, this](const LogLines &lines) {
        if (reply->isGone())
            return;
        if (lines.isEmpty()) {
            reply->chunk(tail);
            return reply->endStream();
        }
        reply->chunk(encode(lines));
        readLogPage(reply, id, lines.constLast().number + 1, encode, tail);
    });
}

AdminServer::AdminServer(TaskEngine *engine, IRunStore *store, const ServerSettings &settings,
                         QObject *parent)
    : QObject(parent), d(std::make_unique<Private>(this, engine, store, settings))
{
}

AdminServer::~AdminServer() = default;

bool AdminServer::listen(QString *error)
{
    if (!d->m_auth.load(d->m_settings.dataDir, error))
        return false;
    d->m_auth.setSessionLimits(d->m_settings.sessionIdleTimeoutMs, d->m_settings.sessionLifetimeMs);
    RequestGuard::Limits limits;
    limits.maxBodyBytes = d->m_settings.maxBodyBytes;
    limits.maxUploadBytes = d->m_settings.maxUploadBytes;
    limits.headTimeoutMs = d->m_settings.requestHeadTimeoutMs;
    limits.bodyTimeoutMs = d->m_settings.requestBodyTimeoutMs;
    limits.idleTimeoutMs = d->m_settings.idleTimeoutMs;
    auto tcp = std::make_unique<RequestGuard>(limits);
    if (!tcp->listen(d->m_settings.address, d->m_settings.port)) {
        const QString where = d->m_settings.listenText();
        *error = tcp->serverError() == QAbstractSocket::AddressInUseError
            ? u"address %1 is in use"_s.arg(where)
            : u"cannot listen on %1: %2"_s.arg(where, tcp->errorString());
        return false;
    }
    d->m_tcp = tcp.get();
    d->m_http.bind(tcp.release());
    return true;
}

quint16 AdminServer::port() const
{
    return d->m_tcp ? d->m_tcp->serverPort() : d->m_settings.port;
}

QUrl AdminServer::baseUrl() const
{
    return QUrl(u"http://"_s + formatListenAddress(d->m_settings.address, port()));
}

QUrl AdminServer::loginUrl() const
{
    QUrl url = baseUrl();
    url.setPath(u"/login"_s);
    url.setQuery(u"token="_s + QString::fromLatin1(d->m_auth.token()));
    return url;
}

QUrl AdminServer::oneTimeLoginUrl()
{
    QUrl url = baseUrl();
    url.setPath(u"/login"_s);
    url.setQuery(u"code="_s + QString::fromLatin1(d->m_auth.issueLoginCode()));
    return url;
}

QByteArray AdminServer::token() const
{
    return d->m_auth.token();
}

} // namespace taskdeck
