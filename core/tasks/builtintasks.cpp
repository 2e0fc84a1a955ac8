// SPDX-License-Identifier: MIT
#include "builtintasks.h"

#include <algorithm>

#include <QByteArray>
#include <QCryptographicHash>
#include <QFile>
#include <QFileInfo>
#include <QJsonObject>

#include "command.h"
#include "runcontext.h"
#include "taskregistry.h"

using namespace Qt::StringLiterals;

namespace taskdeck {

namespace {

// Large enough that hashing, not bookkeeping, dominates; small enough that cancel and
// progress stay responsive on slow disks.
constexpr qint64 ChunkSize = 1024 * 1024;

struct HashAlgorithm
{
    QString value;
    QString label;
    QCryptographicHash::Algorithm algorithm;
};

const QList<HashAlgorithm> &hashAlgorithms()
{
    static const QList<HashAlgorithm> list = {
        {u"md5"_s, u"MD5"_s, QCryptographicHash::Md5},
        {u"sha1"_s, u"SHA-1"_s, QCryptographicHash::Sha1},
        {u"sha256"_s, u"SHA-256"_s, QCryptographicHash::Sha256},
        {u"sha512"_s, u"SHA-512"_s, QCryptographicHash::Sha512},
    };
    return list;
}

QJsonValue runExec(RunContext &ctx)
{
    QString error;
    const std::optional<QStringList> argv =
        splitCommandLine(ctx.arg(u"command"_s).toString(), &error);
    if (!argv)
        throw TaskError(u"invalid command line: "_s + error, u"InvalidCommand"_s);
    // A line of blanks passes the "required" check but leaves nothing to execute.
    if (argv->isEmpty())
        throw TaskError(u"invalid command line: nothing to run"_s, u"InvalidCommand"_s);

    Command cmd;
    cmd.argv = *argv;
    cmd.workingDirectory = ctx.arg(u"cwd"_s).toString();
    return ctx.runChecked(cmd);
}

QJsonValue runChecksum(RunContext &ctx)
{
    const QString algorithmName = ctx.arg(u"algorithm"_s).toString();
    const auto it = std::find_if(hashAlgorithms().cbegin(), hashAlgorithms().cend(),
                                 [&](const HashAlgorithm &a) { return a.value == algorithmName; });
    // Field validation only lets listed choices through, so this is a broken task definition.
    if (it == hashAlgorithms().cend())
        throw TaskError(u"unsupported algorithm \"%1\""_s.arg(algorithmName), u"InvalidArgument"_s);

    const QFileInfo info(ctx.arg(u"file"_s).toString());
    const QString path = info.absoluteFilePath();
    const FileDigest digest = hashFile(ctx, path, it->algorithm, u"hashing "_s + info.fileName());
    return QJsonObject{
        {u"file"_s, path},
        {u"algorithm"_s, it->value},
        {u"digest"_s, digest.hex},
        {u"size"_s, digest.size},
    };
}

} // namespace

FileDigest hashFile(RunContext &ctx, const QString &path, QCryptographicHash::Algorithm algorithm,
                    const QString &progressMessage)
{
    QFile file(path);
    // Read straight into the buffer below: no second buffer inside QFile.
    if (!file.open(QIODevice::ReadOnly | QIODevice::Unbuffered))
        throw TaskError(u"cannot read %1: %2"_s.arg(path, file.errorString()), u"FileError"_s);
    // Pipes and special files report size 0: report progress with an unknown total then.
    const qint64 total = file.isSequential() ? 0 : file.size();
    const bool report = !progressMessage.isEmpty();
    QCryptographicHash hash(algorithm);
    // A small file gets a small buffer: a run over many small files does not allocate (and
    // fault in) a whole chunk for each.
    const qint64 chunk = total > 0 ? std::clamp<qint64>(total, 4096, ChunkSize) : ChunkSize;
    QByteArray buffer(chunk, Qt::Uninitialized);
    FileDigest digest;
    if (report)
        ctx.progress(0, total, progressMessage);
    for (;;) {
        if (ctx.isCanceled())
            throw TaskError(u"canceled"_s, u"Canceled"_s);
        const qint64 n = file.read(buffer.data(), chunk);
        if (n < 0)
            throw TaskError(u"cannot read %1: %2"_s.arg(path, file.errorString()), u"FileError"_s);
        if (n == 0)
            break;
        hash.addData(QByteArrayView(buffer.constData(), n));
        digest.size += n;
        if (report)
            ctx.progress(digest.size, total, progressMessage);
    }
    digest.hex = QString::fromLatin1(hash.result().toHex());
    return digest;
}

Task execTask()
{
    Task task;
    task.key = u"exec"_s;
    task.title = u"Run Command"_s;
    task.description = u"Runs one command line on this machine. The line is split into "
                       u"arguments like a shell would, but no shell runs it: no pipes, "
                       u"redirections or variable expansion."_s;
    task.category = u"admin"_s;
    task.icon = u"terminal"_s;
    task.tags = {u"shell"_s, u"process"_s};
    task.danger = u"Runs any command on this machine with your permissions."_s;
    task.fields = {
        Field(u"command"_s, FieldType::Text)
            .withTitle(u"Command"_s)
            .withDescription(u"Program and arguments; quote arguments that contain spaces."_s)
            .withPlaceholder(u"ls -l /var/log"_s)
            .withRequired(),
        Field(u"cwd"_s, FieldType::Text)
            .withTitle(u"Working directory"_s)
            .withDescription(u"Directory to run in; empty means Taskdeck's own."_s),
    };
    task.fn = runExec;
    return task;
}

Task checksumTask()
{
    Field::Choices choices;
    for (const HashAlgorithm &a : hashAlgorithms())
        choices.append({a.value, a.label});

    Task task;
    task.key = u"checksum"_s;
    task.title = u"File Checksum"_s;
    task.description = u"Computes the MD5, SHA-1, SHA-256 or SHA-512 digest of a file."_s;
    task.category = u"data"_s;
    task.icon = u"fingerprint"_s;
    task.tags = {u"file"_s, u"hash"_s};
    task.fields = {
        Field(u"file"_s, FieldType::File)
            .withTitle(u"File"_s)
            .withDescription(u"The file to hash."_s)
            .withRequired(),
        Field(u"algorithm"_s, FieldType::Select)
            .withTitle(u"Algorithm"_s)
            .withChoices(choices)
            .withDefault(u"sha256"_s),
    };
    task.fn = runChecksum;
    return task;
}

void addFixedTasks(TaskRegistry &registry, const QList<Task> &tasks)
{
    for (const Task &task : tasks) {
        QString error;
        if (!registry.add(task, &error))
            qFatal("built-in task %s rejected: %s", qPrintable(task.key), qPrintable(error));
    }
}

void registerBuiltinTasks(TaskRegistry &registry)
{
    addFixedTasks(registry, {execTask(), checksumTask()});
}

} // namespace taskdeck
