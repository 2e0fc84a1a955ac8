// SPDX-License-Identifier: MIT
#include "webassets.h"

#include <QCryptographicHash>
#include <QFile>
#include <QHash>
#include <QList>

#include <memory>

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

// The weight an Accept header gives \a type ("text/html"): the most specific range that
// matches it decides; 0 when none does.
double acceptWeight(const QByteArray &accept, const QByteArray &type)
{
    const QByteArray major = type.left(type.indexOf('/'));
    int bestSpecificity = -1;
    double weight = 0.0;
    const QList<QByteArray> ranges = accept.split(',');
    for (const QByteArray &range : ranges) {
        const QList<QByteArray> parts = range.split(';');
        const QByteArray media = parts.constFirst().trimmed().toLower();
        int specificity = -1;
        if (media == type)
            specificity = 2;
        else if (media == major + "/*")
            specificity = 1;
        else if (media == "*/*")
            specificity = 0;
        if (specificity <= bestSpecificity)
            continue;
        double q = 1.0;
        for (qsizetype i = 1; i < parts.size(); ++i) {
            const QByteArray param = parts.at(i).trimmed();
            if (param.startsWith("q=")) {
                bool ok = false;
                q = param.mid(2).toDouble(&ok);
                if (!ok)
                    q = 0.0;
            }
        }
        bestSpecificity = specificity;
        weight = q;
    }
    return weight;
}

} // namespace

QByteArray WebAssets::contentTypeOf(const QString &path)
{
    if (path.endsWith(u".html"))
        return "text/html; charset=utf-8";
    if (path.endsWith(u".css"))
        return "text/css; charset=utf-8";
    if (path.endsWith(u".js") || path.endsWith(u".mjs"))
        return "text/javascript; charset=utf-8";
    if (path.endsWith(u".svg"))
        return "image/svg+xml";
    if (path.endsWith(u".png"))
        return "image/png";
    if (path.endsWith(u".json"))
        return "application/json";
    return "application/octet-stream";
}

const WebAssets::Asset *WebAssets::find(const QString &path)
{
    static QHash<QString, std::shared_ptr<const Asset>> cache;
    if (path.isEmpty() || path.contains(u"..") || path.startsWith(u'/') || path.contains(u'\\'))
        return nullptr;
    if (const auto it = cache.constFind(path); it != cache.constEnd())
        return it->get();
    QFile file(u":/taskdeck/web/"_s + path);
    if (!file.open(QIODevice::ReadOnly))
        return nullptr;
    auto asset = std::make_shared<Asset>();
    asset->body = file.readAll();
    asset->contentType = contentTypeOf(path);
    asset->etag = '"' + QCryptographicHash::hash(asset->body, QCryptographicHash::Sha256).toHex().left(32) + '"';
    cache.insert(path, asset);
    return asset.get();
}

bool WebAssets::prefersHtml(const QByteArray &accept)
{
    if (accept.isEmpty())
        return false;
    const double html = acceptWeight(accept, "text/html");
    return html > 0.0 && html > acceptWeight(accept, "application/json");
}

} // namespace taskdeck
