"""An exact (single-sample) OpenGL label pass: face ids and view-space depth per pixel.

The RGB pass is multisampled, so its buffers mix fragments at edges. This pass draws into a
framebuffer without multisampling, so each pixel holds the one triangle that covers the
pixel's centre (OpenGL's rasterisation rule): `gl_PrimitiveID + 1` in an R32UI attachment
(0 = nothing drawn) and the distance along the camera's -Z axis in mm in an R32F attachment.

It needs a current OpenGL 3.3 core context (the pyrender backend makes its own current before
each call) and PyOpenGL; GLSL 3.30, which Mesa's llvmpipe supports.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass

import numpy as np
from OpenGL import GL as gl

log = logging.getLogger(__name__)

_VERTEX_SHADER = """
#version 330 core
layout(location = 0) in vec3 position;
uniform mat4 model_view;
uniform mat4 projection;
out float view_depth;
void main() {
    vec4 p = model_view * vec4(position, 1.0);
    view_depth = -p.z;
    gl_Position = projection * p;
}
"""

_FRAGMENT_SHADER = """
#version 330 core
in float view_depth;
uniform uint id_offset;
layout(location = 0) out uint face_id;
layout(location = 1) out float depth;
void main() {
    face_id = uint(gl_PrimitiveID + 1) + id_offset;
    depth = view_depth;
}
"""


@dataclass(eq=False)
class GpuMesh:
    """GPU buffers of one mesh for the label pass.

    Attributes:
        vao, vbo, ebo: OpenGL object names.
        n_faces: number of triangles (face i is drawn as primitive i).
    """

    vao: int
    vbo: int
    ebo: int
    n_faces: int


@dataclass(frozen=True, eq=False)
class Labels:
    """The label pass's output for one mesh.

    Attributes:
        face_id: (H, W) uint32, face index + 1 of the triangle covering each pixel centre;
            0 where the mesh is not seen. Row 0 is the top of the image.
        depth: (H, W) float32 mm, distance along the camera's -Z axis to that surface;
            0 where the mesh is not seen.
    """

    face_id: np.ndarray
    depth: np.ndarray


def _compile(kind: int, source: str) -> int:
    shader = gl.glCreateShader(kind)
    gl.glShaderSource(shader, source)
    gl.glCompileShader(shader)
    if not gl.glGetShaderiv(shader, gl.GL_COMPILE_STATUS):
        message = gl.glGetShaderInfoLog(shader)
        gl.glDeleteShader(shader)
        raise RuntimeError(f"label pass shader failed to compile: {message!r}")
    return shader


def _link(vertex: str, fragment: str) -> int:
    shaders = [_compile(gl.GL_VERTEX_SHADER, vertex), _compile(gl.GL_FRAGMENT_SHADER, fragment)]
    program = gl.glCreateProgram()
    for shader in shaders:
        gl.glAttachShader(program, shader)
    gl.glLinkProgram(program)
    for shader in shaders:
        gl.glDetachShader(program, shader)
        gl.glDeleteShader(shader)
    if not gl.glGetProgramiv(program, gl.GL_LINK_STATUS):
        message = gl.glGetProgramInfoLog(program)
        gl.glDeleteProgram(program)
        raise RuntimeError(f"label pass program failed to link: {message!r}")
    return program


class LabelPass:
    """Face-id and depth rendering into a single-sample framebuffer.

    Every method needs the owning OpenGL context to be current.
    """

    def __init__(self) -> None:
        self._program = _link(_VERTEX_SHADER, _FRAGMENT_SHADER)
        self._loc_model_view = gl.glGetUniformLocation(self._program, "model_view")
        self._loc_projection = gl.glGetUniformLocation(self._program, "projection")
        self._loc_id_offset = gl.glGetUniformLocation(self._program, "id_offset")
        self._fbo: int | None = None
        self._renderbuffers: list[int] = []
        self._size = (0, 0)

    def _resize(self, width: int, height: int) -> None:
        """(Re)create the framebuffer for (width, height) pixels."""
        self._delete_framebuffer()
        formats = [gl.GL_R32UI, gl.GL_R32F, gl.GL_DEPTH_COMPONENT32F]
        attachments = [gl.GL_COLOR_ATTACHMENT0, gl.GL_COLOR_ATTACHMENT1, gl.GL_DEPTH_ATTACHMENT]
        self._renderbuffers = [int(rb) for rb in gl.glGenRenderbuffers(3)]
        self._fbo = int(gl.glGenFramebuffers(1))
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, self._fbo)
        for rb, fmt, attachment in zip(self._renderbuffers, formats, attachments, strict=True):
            gl.glBindRenderbuffer(gl.GL_RENDERBUFFER, rb)
            gl.glRenderbufferStorage(gl.GL_RENDERBUFFER, fmt, width, height)
            gl.glFramebufferRenderbuffer(gl.GL_FRAMEBUFFER, attachment, gl.GL_RENDERBUFFER, rb)
        gl.glDrawBuffers(2, [gl.GL_COLOR_ATTACHMENT0, gl.GL_COLOR_ATTACHMENT1])
        status = gl.glCheckFramebufferStatus(gl.GL_FRAMEBUFFER)
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, 0)
        if status != gl.GL_FRAMEBUFFER_COMPLETE:
            raise RuntimeError(f"label framebuffer is incomplete (status {status:#x})")
        self._size = (width, height)
        log.debug("label framebuffer %dx%d", width, height)

    def _delete_framebuffer(self) -> None:
        if self._fbo is not None:
            gl.glDeleteFramebuffers(1, [self._fbo])
            self._fbo = None
        if self._renderbuffers:
            gl.glDeleteRenderbuffers(len(self._renderbuffers), self._renderbuffers)
            self._renderbuffers = []
        self._size = (0, 0)

    @staticmethod
    def upload(vertices: np.ndarray, faces: np.ndarray) -> GpuMesh:
        """Copy a mesh to the GPU.

        Args:
            vertices: (V, 3) mm, object frame (stored as float32).
            faces: (F, 3) vertex indices.
        """
        vertices = np.ascontiguousarray(vertices, dtype=np.float32)
        faces = np.ascontiguousarray(faces, dtype=np.uint32)
        vao = int(gl.glGenVertexArrays(1))
        vbo, ebo = (int(b) for b in gl.glGenBuffers(2))
        gl.glBindVertexArray(vao)
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, vbo)
        gl.glBufferData(gl.GL_ARRAY_BUFFER, vertices.nbytes, vertices, gl.GL_STATIC_DRAW)
        gl.glEnableVertexAttribArray(0)
        gl.glVertexAttribPointer(0, 3, gl.GL_FLOAT, gl.GL_FALSE, 0, ctypes.c_void_p(0))
        gl.glBindBuffer(gl.GL_ELEMENT_ARRAY_BUFFER, ebo)
        gl.glBufferData(gl.GL_ELEMENT_ARRAY_BUFFER, faces.nbytes, faces, gl.GL_STATIC_DRAW)
        gl.glBindVertexArray(0)
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, 0)
        return GpuMesh(vao=vao, vbo=vbo, ebo=ebo, n_faces=len(faces))

    @staticmethod
    def free(mesh: GpuMesh) -> None:
        """Delete a mesh's GPU buffers."""
        gl.glDeleteVertexArrays(1, [mesh.vao])
        gl.glDeleteBuffers(2, [mesh.vbo, mesh.ebo])

    def draw(
        self,
        mesh: GpuMesh,
        model_view: np.ndarray,
        projection: np.ndarray,
        size: tuple[int, int],
        cull_back_faces: bool = True,
    ) -> Labels:
        """Draw one mesh alone and read its labels back (see `draw_many`)."""
        return self.draw_many([(mesh, model_view)], projection, size, cull_back_faces)

    def draw_many(
        self,
        meshes: list[tuple[GpuMesh, np.ndarray]],
        projection: np.ndarray,
        size: tuple[int, int],
        cull_back_faces: bool = True,
    ) -> Labels:
        """Draw several meshes into one depth-tested frame and read the labels back.

        Mesh k's face i is written as `offset_k + i + 1`, offset_k being the face count of
        the meshes before it, so one image tells which object and face every pixel shows.

        Args:
            meshes: (buffers from `upload`, (4, 4) object → camera model-view, mm) each.
            projection: (4, 4) OpenGL projection matrix.
            size: (width, height) in pixels.
            cull_back_faces: skip back faces (right for closed meshes, which never show
                them; gives the same image faster). Use False for open meshes.
        """
        if size != self._size:
            self._resize(*size)
        width, height = size
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, self._fbo)
        gl.glViewport(0, 0, width, height)
        gl.glDisable(gl.GL_MULTISAMPLE)
        gl.glDisable(gl.GL_BLEND)
        gl.glEnable(gl.GL_DEPTH_TEST)
        gl.glDepthMask(gl.GL_TRUE)
        gl.glDepthFunc(gl.GL_LESS)
        gl.glDepthRange(0.0, 1.0)
        if cull_back_faces:
            gl.glEnable(gl.GL_CULL_FACE)
            gl.glCullFace(gl.GL_BACK)
        else:
            gl.glDisable(gl.GL_CULL_FACE)
        gl.glClearBufferuiv(gl.GL_COLOR, 0, np.zeros(4, dtype=np.uint32))
        gl.glClearBufferfv(gl.GL_COLOR, 1, np.zeros(4, dtype=np.float32))
        gl.glClearBufferfv(gl.GL_DEPTH, 0, np.ones(1, dtype=np.float32))
        gl.glUseProgram(self._program)
        proj = np.ascontiguousarray(projection, dtype=np.float32)
        gl.glUniformMatrix4fv(self._loc_projection, 1, gl.GL_TRUE, proj)
        offset = 0
        for mesh, model_view in meshes:
            mv = np.ascontiguousarray(model_view, dtype=np.float32)
            gl.glUniformMatrix4fv(self._loc_model_view, 1, gl.GL_TRUE, mv)
            gl.glUniform1ui(self._loc_id_offset, offset)
            gl.glBindVertexArray(mesh.vao)
            gl.glDrawElements(
                gl.GL_TRIANGLES, 3 * mesh.n_faces, gl.GL_UNSIGNED_INT, ctypes.c_void_p(0)
            )
            offset += mesh.n_faces
        gl.glBindVertexArray(0)
        gl.glUseProgram(0)
        face_id = np.empty((height, width), dtype=np.uint32)
        depth = np.empty((height, width), dtype=np.float32)
        gl.glPixelStorei(gl.GL_PACK_ALIGNMENT, 4)
        gl.glReadBuffer(gl.GL_COLOR_ATTACHMENT0)
        gl.glReadPixels(0, 0, width, height, gl.GL_RED_INTEGER, gl.GL_UNSIGNED_INT, face_id)
        gl.glReadBuffer(gl.GL_COLOR_ATTACHMENT1)
        gl.glReadPixels(0, 0, width, height, gl.GL_RED, gl.GL_FLOAT, depth)
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, 0)
        # OpenGL's row 0 is the bottom of the image.
        return Labels(face_id=face_id[::-1], depth=depth[::-1])

    def delete(self) -> None:
        """Free the program and framebuffer."""
        self._delete_framebuffer()
        if self._program:
            gl.glDeleteProgram(self._program)
            self._program = 0
